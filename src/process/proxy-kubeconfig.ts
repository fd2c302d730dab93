// The kubeconfig that points a client at the proxy: server = the proxy, none of the proxy's own
// credentials (it holds them), a cluster, user and context named `mtls-proxy`. For one run
// (`-- COMMAND`) it also holds what only that command may use to reach the proxy: the listener's
// certificate as its CA, and the token callers must present. JSON, which is YAML too.
import { bracketed } from '../util/addresses.js'

/** What lets a client in to a proxy that asks for it: the CA of its listener, and its callers' token. */
export interface ProxyAccess {
  caPem: string
  token: string
}

const NAME = 'mtls-proxy'

/**
 * clusters: the clusters served, each under /clusters/NAME/ and a context of that name, so that
 * `kubectl --context NAME` acts on the cluster NAME for every one of them. The proxy's own context,
 * `mtls-proxy`, names its root (the default cluster), unless a cluster has that name: then it is that
 * cluster's, and the current context is the default cluster's own.
 */
export function proxyKubeconfig (server: string, served?: { clusters: readonly string[]; default: string }, access?: ProxyAccess): string {
  const clusters = served?.clusters ?? []
  const taken = clusters.includes(NAME)
  const entries = [
    ...(taken ? [] : [{ name: NAME, server }]),
    ...clusters.map((c) => ({ name: c, server: `${server}/clusters/${encodeURIComponent(c)}` })),
  ]
  const current = taken ? served!.default : NAME
  const ca = access ? { 'certificate-authority-data': Buffer.from(access.caPem).toString('base64') } : {}
  return `${JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: entries.map((e) => ({ name: e.name, cluster: { server: e.server, ...ca } })),
    users: [{ name: NAME, user: access ? { token: access.token } : {} }],
    contexts: entries.map((e) => ({ name: e.name, context: { cluster: e.name, user: NAME } })),
    'current-context': current,
  }, null, 2)}\n`
}

/** The proxy's plain-HTTP address as kubeconfig and curl write it. */
export function listenUrl (address: string, port: number): string {
  return `http://${bracketed(address)}:${port}`
}
