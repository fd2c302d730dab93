// Which clusters the settings name besides the default: every other context of the kubeconfig
// (--all-contexts), and a config file's `clusters:`. Each becomes a definition the app opens; nothing
// is read here but the kubeconfig's list of contexts.
import type { Logger } from 'pino'
import type { ClusterDefinition } from '../clusters.js'
import type { Config } from '../config.js'
import { clusterNameProblem } from '../paths.js'
import { UsageError } from '../errors.js'
import { kubeconfigContexts, readKubeconfig } from './kubeconfig.js'
import { fileSetSource, type CredentialSpec } from './source.js'
import { openCredentialStore } from './store.js'

/**
 * Another context of the same kubeconfig, as kubectl --context would take it: the flags that override
 * the kubeconfig (--upstream, --cacert, --cert, --cluster, --user …) are the default context's alone,
 * and the listener's settings belong to no cluster.
 */
function contextSpec (spec: CredentialSpec, context: string): CredentialSpec {
  return {
    kubeconfig: { ...spec.kubeconfig!, context, cluster: undefined, user: undefined },
    server: undefined,
    tlsServerName: undefined,
    insecureSkipTlsVerify: false,
    ca: undefined,
    cert: undefined,
    key: undefined,
    passphraseFile: undefined,
    listener: undefined,
    callerTokenFile: undefined,
    proxyEnv: spec.proxyEnv,
  }
}

function definition (name: string, spec: CredentialSpec, logger: Logger): ClusterDefinition {
  const log = logger.child({ cluster: name })
  return {
    name,
    inspect: async () => {
      // A kubeconfig user's exec plugin runs on first use; the rest of its entry is checked now.
      if (!spec.kubeconfig || spec.cert) return { lazy: false }
      return { lazy: (await readKubeconfig(spec.kubeconfig)).exec !== undefined }
    },
    open: () => openCredentialStore(fileSetSource(spec, { logger: log }), { logger: log }),
  }
}

/**
 * The default cluster's name (the context its credentials were read from, as the open store says;
 * 'default' without a kubeconfig) and the other clusters' definitions.
 */
export async function clusterDefinitions (
  config: Config, defaultContext: string | undefined, logger: Logger
): Promise<{ name: string; others: ClusterDefinition[] }> {
  const spec = config.credentials
  const name = defaultContext ?? 'default'
  const others = new Map<string, ClusterDefinition>()
  // Read only for --all-contexts: the default context's name came with its credentials.
  if (config.allContexts) {
    for (const context of await kubeconfigContexts(spec.kubeconfig!)) {
      if (context === name) continue
      const problem = clusterNameProblem(context)
      if (problem) {
        logger.warn(`context '${context.slice(0, 100)}' is not served under /clusters/: ${problem}; rename it`)
        continue
      }
      others.set(context, definition(context, contextSpec(spec, context), logger))
    }
  }
  for (const cluster of config.clusters) {
    if (cluster.name === name || others.has(cluster.name)) {
      throw new UsageError(`the config file's clusters: names '${cluster.name}', which is already ` +
        `${cluster.name === name ? 'the default cluster\'s name' : 'a context of the kubeconfig (--all-contexts)'}; give it another name`)
    }
    others.set(cluster.name, definition(cluster.name, cluster.credentials, logger))
  }
  return { name, others: [...others.values()] }
}
