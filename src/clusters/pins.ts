// What a start fixes for the life of the proxy: each cluster's kubeconfig context (the default's is
// the current-context at start, kept as kubectl proxy keeps it, whatever `kubectl config
// use-context` does later) and that context's namespace, the other contexts served (--all-contexts),
// and the server each cluster's credentials are bound to (binding.ts). The --workers primary works
// this out once and hands it to every worker it starts, replacements included, so that all serve the
// same servers. `mtls-proxy kubeconfig` names the same clusters without reading a credential.
import type { Config } from '../settings/types.js'
import { UsageError } from '../util/errors.js'
import { clusterNameProblem } from '../admission/target.js'
import { bindingOf, type ServerBinding } from '../credentials/binding.js'
import { openKubeconfig, type Kubeconfig, type KubeconfigChoice } from '../credentials/kubeconfig.js'
import { serverEndpoint } from '../credentials/file-set.js'
import type { CredentialSpec } from '../credentials/source.js'
import { serviceAccountNamespace } from '../credentials/in-cluster.js'
import { kubeconfigOnly } from '../settings/credential-spec.js'

/** One cluster, as it started. Plain data. */
export interface ClusterPin {
  /** the kubeconfig context its credentials are read from */
  context?: string
  /** the namespace a client of the proxy acts in by default: its context's at start, or in a pod the service
   * account's (process/proxy-kubeconfig.ts writes it) */
  namespace?: string
  /** the server they are bound to; missing: it could not be read at start, and binds when it first opens */
  server?: ServerBinding
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

/** What of the settings says which clusters are served. */
export type ClusterSettings = Pick<Config, 'credentials' | 'allContexts' | 'clusters'>

type Read = (choice: KubeconfigChoice) => Promise<Kubeconfig>
type PinOne = (spec: CredentialSpec, read: Read) => Promise<ClusterPin>

/**
 * Reads what each cluster's settings name, once: the default cluster's mistakes are the start's
 * (UsageError), another cluster's are its own (it is reported broken when it opens).
 */
export function pinClusters (config: ClusterSettings): Promise<Pins> {
  return pinEach(config, pin)
}

/**
 * The same clusters, names and namespaces only, from the kubeconfig's contexts: no credential is
 * read and no server pinned (`mtls-proxy kubeconfig` describes a proxy started elsewhere).
 */
export function nameClusters (config: ClusterSettings): Promise<Pins> {
  return pinEach(config, named)
}

async function pinEach (config: ClusterSettings, pinOne: PinOne): Promise<Pins> {
  const spec = config.credentials
  const read = kubeconfigReader()
  const pinned = await pinOne(spec, read)
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
      const other = contextSpec(spec, context)
      clusters[context] = await pinOne(other, read).catch(() => unpinned(other, read, { context }))
    }
  }
  for (const cluster of config.clusters) {
    if (clusters[cluster.name] !== undefined) {
      throw new UsageError(`the config file's clusters: names '${cluster.name}', which is already ${cluster.name === name ? 'the default cluster\'s name' : 'a context of the kubeconfig (--all-contexts)'}; give it another name`)
    }
    clusters[cluster.name] = await pinOne(cluster.credentials, read).catch(() => unpinned(cluster.credentials, read, {}))
  }
  return { name, contexts, clusters, warnings }
}

/** Kubeconfig files read once per start, however many clusters pick from them. */
function kubeconfigReader (): Read {
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

async function pin (spec: CredentialSpec, read: Read): Promise<ClusterPin> {
  const kube = spec.kubeconfig ? await (await read(spec.kubeconfig)).pick(spec.kubeconfig) : undefined
  // In a pod, the service account's namespace, as kubectl's there.
  const namespace = spec.serviceAccount ? await serviceAccountNamespace(spec.serviceAccount) : kube?.namespace
  return { ...defined({ context: kube?.context, namespace }), server: bindingOf(serverEndpoint(spec, kube)) }
}

/** A context and its namespace alone. */
async function named (spec: CredentialSpec, read: Read): Promise<ClusterPin> {
  if (!spec.kubeconfig) return {}
  const { context, namespace } = (await read(spec.kubeconfig)).context(spec.kubeconfig)
  return defined({ context, namespace })
}

/** A cluster that cannot be read at start still has its context's namespace, for its context in the proxy's kubeconfig. */
async function unpinned (spec: CredentialSpec, read: Read, pin: ClusterPin): Promise<ClusterPin> {
  const namespace = await named(spec, read).then((n) => n.namespace, () => undefined)
  return { ...pin, ...defined({ namespace }) }
}

/** Plain data that goes to workers as JSON: no key for what is unknown. */
function defined (pin: { context?: string | undefined; namespace?: string | undefined }): ClusterPin {
  return {
    ...(pin.context !== undefined ? { context: pin.context } : {}),
    ...(pin.namespace !== undefined ? { namespace: pin.namespace } : {}),
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
  return kubeconfigOnly({ ...spec.kubeconfig!, context, cluster: undefined, user: undefined }, spec.proxyEnv)
}
