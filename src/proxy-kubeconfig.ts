// The kubeconfig that points a client at the proxy: server = the proxy, none of the proxy's own
// credentials (it holds them), a cluster, user and context named `mtls-proxy`. For one run
// (`-- COMMAND`) it also holds what only that command may use to reach the proxy: the listener's
// certificate as its CA, and the token callers must present. JSON, which is YAML too.
import { bracketed } from './addresses.js'

/** What lets a client in to a proxy that asks for it: the CA of its listener, and its callers' token. */
export interface ProxyAccess {
  caPem: string
  token: string
}

const NAME = 'mtls-proxy'

/** clusters: served under /clusters/NAME/ too, each a context of that name (kubectl --context NAME) */
export function proxyKubeconfig (server: string, clusters: readonly string[] = [], access?: ProxyAccess): string {
  const entries = [{ name: NAME, server }, ...clusters.filter((c) => c !== NAME).map((c) => ({
    name: c, server: `${server}/clusters/${encodeURIComponent(c)}`,
  }))]
  const current = NAME
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
export function proxyUrl (address: string, port: number): string {
  return `http://${bracketed(address)}:${port}`
}
