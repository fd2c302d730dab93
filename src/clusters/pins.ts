// What a start fixes for the life of the proxy: each cluster's kubeconfig context (the default's is
// the current-context at start, kept as kubectl proxy keeps it, whatever `kubectl config
// use-context` does later), the other contexts served (--all-contexts), and the server each
// cluster's credentials are bound to (binding.ts). The --workers primary works this out once and
// hands it to every worker it starts, replacements included, so that all serve the same servers.
import type { Config } from '../settings/types.js'
import { UsageError } from '../util/errors.js'
import { clusterNameProblem } from '../admission/target.js'
import { bindingOf, type ServerBinding } from '../credentials/binding.js'
import { openKubeconfig, type Kubeconfig, type KubeconfigChoice } from '../credentials/kubeconfig.js'
import { serverEndpoint } from '../credentials/file-set.js'
import type { CredentialSpec } from '../credentials/source.js'
import { serviceAccountNamespace } from '../credentials/in-cluster.js'

/** One cluster, as it started. Plain data. */
export interface ClusterPin {
  /** the kubeconfig context its credentials are read from */
  context?: string
  /** the server they are bound to; missing: it could not be read at start, and binds when it first opens */
  server?: ServerBinding
  /** the namespace a client of this cluster works in (run mode's kubeconfig says it) */
  namespace?: string
}

export interface Pins {
  /** the default cluster's name: its context, else 'default' */
  name: string
  /** --all-contexts: the other contexts served, in the kubeconfig's order */
  contexts: string[]
  /** by cluster name, the default's included */
  clusters: Record<string, ClusterPin>
  /** contexts left out, said in the log */
  warnings: string[]
}

/**
 * Reads what each cluster's settings name, once: the default cluster's mistakes are the start's
 * (UsageError), another cluster's are its own (it is reported broken when it opens).
 */
export async function pinClusters (config: Config): Promise<Pins> {
  const spec = config.credentials
  const read = kubeconfigReader()
  const pinned = await pin(spec, read)
  const name = pinned.context ?? 'default'
  const clusters: Record<string, ClusterPin> = { [name]: pinned }
  const contexts: string[] = []
  const warnings: string[] = []
  if (config.allContexts) {
    for (const context of (await read(spec.kubeconfig!)).contexts) {
      if (context === name) continue
      const problem = clusterNameProblem(context)
      if (problem) {
        warnings.push(`context '${context.slice(0, 100)}' is not served under /clusters/: ${problem}; rename it`)
        continue
      }
      contexts.push(context)
      clusters[context] = await pin(contextSpec(spec, context), read).catch(() => ({ context }))
    }
  }
  for (const cluster of config.clusters) {
    if (clusters[cluster.name] !== undefined) {
      throw new UsageError(`the config file's clusters: names '${cluster.name}', which is already ${cluster.name === name ? 'the default cluster\'s name' : 'a context of the kubeconfig (--all-contexts)'}; give it another name`)
    }
    clusters[cluster.name] = await pin(cluster.credentials, read).catch(() => ({}))
  }
  return { name, contexts, clusters, warnings }
}

/** Kubeconfig files read once per start, however many clusters pick from them. */
function kubeconfigReader (): (choice: KubeconfigChoice) => Promise<Kubeconfig> {
  const opened = new Map<string, Promise<Kubeconfig>>()
  return (choice) => {
    const key = JSON.stringify([choice.files, choice.from])
    let kubeconfig = opened.get(key)
    if (!kubeconfig) {
      kubeconfig = openKubeconfig(choice)
      opened.set(key, kubeconfig)
    }
    return kubeconfig
  }
}

async function pin (spec: CredentialSpec, read: (choice: KubeconfigChoice) => Promise<Kubeconfig>): Promise<ClusterPin> {
  const kube = spec.kubeconfig ? await (await read(spec.kubeconfig)).pick(spec.kubeconfig) : undefined
  return {
    ...(kube?.context !== undefined ? { context: kube.context } : {}),
    server: bindingOf(serverEndpoint(spec, kube)),
    ...(spec.serviceAccount ? { namespace: await serviceAccountNamespace(spec.serviceAccount) } : {}),
  }
}

/** The settings of a cluster with its context kept as it started (a context they name is theirs already). */
export function pinnedSpec (spec: CredentialSpec, pin: ClusterPin | undefined): CredentialSpec {
  if (!spec.kubeconfig || spec.kubeconfig.context !== undefined || pin?.context === undefined) return spec
  return { ...spec, kubeconfig: { ...spec.kubeconfig, context: pin.context, pinned: true } }
}

/**
 * Another context of the same kubeconfig, as kubectl --context would take it: the flags that override
 * the kubeconfig (--upstream, --cacert, --cert, --cluster, --user …) are the default context's alone,
 * and the listener's settings belong to no cluster.
 */
export function contextSpec (spec: CredentialSpec, context: string): CredentialSpec {
  return {
    kind: 'file-set',
    kubeconfig: { ...spec.kubeconfig!, context, cluster: undefined, user: undefined },
    server: undefined,
    tlsServerName: undefined,
    insecureSkipTlsVerify: false,
    ca: undefined,
    cert: undefined,
    key: undefined,
    token: undefined,
    passphraseFile: undefined,
    serviceAccount: undefined,
    listener: undefined,
    proxyEnv: spec.proxyEnv,
  }
}
