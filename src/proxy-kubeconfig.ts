// The kubeconfig that points a client at the proxy: server = the proxy, no credentials (the proxy
// holds them), one cluster, user and context named `mtls-proxy`. JSON, which is YAML too.
import { bracketed } from './addresses.js'

/** clusters: served under /clusters/NAME/ too, each a context of that name (kubectl --context NAME) */
export function proxyKubeconfig (server: string, clusters: readonly string[] = []): string {
  const name = 'mtls-proxy'
  const entries = [{ name, server }, ...clusters.filter((c) => c !== name).map((c) => ({
    name: c, server: `${server}/clusters/${encodeURIComponent(c)}`,
  }))]
  return `${JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: entries.map((e) => ({ name: e.name, cluster: { server: e.server } })),
    users: [{ name, user: {} }],
    contexts: entries.map((e) => ({ name: e.name, context: { cluster: e.name, user: name } })),
    'current-context': name,
  }, null, 2)}\n`
}

/** The proxy's plain-HTTP address as kubeconfig and curl write it. */
export function proxyUrl (address: string, port: number): string {
  return `http://${bracketed(address)}:${port}`
}
