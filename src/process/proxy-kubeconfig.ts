// The kubeconfig that points a client at the proxy: server = the proxy, none of the proxy's own
// credentials (it holds them), a cluster, user and context named `mtls-proxy`, and a context per
// cluster served, each in the namespace of the kubeconfig context it was started from (so a wrapped
// `kubectl delete` acts where `kubectl --context NAME delete` would). For one run (`-- COMMAND`) it
// also holds what only that command may use to reach the proxy: the listener's certificate as its
// CA, and the token callers must present.
import type { ClusterSettings, Pins } from '../clusters/pins.js'
import { bracketed } from '../util/addresses.js'
import * as lazy from '../util/lazy.js'

/** What lets a client in to a proxy that asks for it: the CA of its listener, and its callers' token. */
export interface ProxyAccess {
  caPem: string
  token: string
}

/** A cluster the proxy serves, as a context names it. */
export interface ServedCluster {
  name: string
  namespace?: string
}

/** What the proxy serves: the default cluster (at /), and with several, each (under /clusters/NAME/), the default first. */
export interface Served {
  default: ServedCluster
  clusters: readonly ServedCluster[]
}

const NAME = 'mtls-proxy'

/** The clusters a start pinned, in the order it serves them (clusters/definitions.ts), with their namespaces. */
export function servedOf (pins: Pins, clusters: ClusterSettings['clusters']): Served {
  const names = [pins.name, ...pins.contexts, ...clusters.map((c) => c.name)]
  const served = names.map((name) => {
    const namespace = pins.clusters[name]?.namespace
    return namespace === undefined ? { name } : { name, namespace }
  })
  return { default: served[0]!, clusters: served.length > 1 ? served : [] }
}

/**
 * The kubeconfig as data, its keys in the order `kubectl config view` prints them. Each cluster
 * served is under /clusters/NAME/ and a context of that name, so that `kubectl --context NAME` acts
 * on the cluster NAME for every one of them. The proxy's own context, `mtls-proxy`, names its root
 * (the default cluster), unless a cluster has that name: then it is that cluster's, and the current
 * context is the default cluster's own.
 */
export function proxyKubeconfig (server: string, served: Served, access?: ProxyAccess): Record<string, unknown> {
  const taken = served.clusters.some((c) => c.name === NAME)
  const entries = [
    ...(taken ? [] : [{ name: NAME, server, namespace: served.default.namespace }]),
    ...served.clusters.map((c) => ({ name: c.name, server: `${server}/clusters/${encodeURIComponent(c.name)}`, namespace: c.namespace })),
  ]
  const ca = access ? { 'certificate-authority-data': Buffer.from(access.caPem).toString('base64') } : {}
  return {
    apiVersion: 'v1',
    clusters: entries.map((e) => ({ cluster: { ...ca, server: e.server }, name: e.name })),
    contexts: entries.map((e) => ({
      context: { cluster: e.name, ...(e.namespace === undefined ? {} : { namespace: e.namespace }), user: NAME },
      name: e.name,
    })),
    'current-context': taken ? served.default.name : NAME,
    kind: 'Config',
    preferences: {},
    users: [{ name: NAME, user: access ? { token: access.token } : {} }],
  }
}

/** As `kubectl config view` writes it: YAML, or JSON (-o json). */
export function kubeconfigText (kubeconfig: Record<string, unknown>, format: 'yaml' | 'json'): string {
  if (format === 'json') return `${JSON.stringify(kubeconfig, null, 2)}\n`
  // kubectl reads YAML 1.1: a name such as `yes`, `on` or `1:20` is quoted, or it would read a boolean or a number.
  return lazy.yaml().stringify(kubeconfig, { version: '1.1', indentSeq: false, lineWidth: 0 })
}

/** The proxy's plain-HTTP address as kubeconfig and curl write it. */
export function listenUrl (address: string, port: number): string {
  return `http://${bracketed(address)}:${port}`
}
