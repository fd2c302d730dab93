// The kubeconfig that points a client at the proxy: server = the proxy, no credentials (the proxy
// holds them), one cluster, user and context named `mtls-proxy`. JSON, which is YAML too.
import { bracketed } from './addresses.js'

export function proxyKubeconfig (server: string): string {
  const name = 'mtls-proxy'
  return `${JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { server } }],
    users: [{ name, user: {} }],
    contexts: [{ name, context: { cluster: name, user: name } }],
    'current-context': name,
  }, null, 2)}\n`
}

/** The proxy's plain-HTTP address as kubeconfig and curl write it. */
export function proxyUrl (address: string, port: number): string {
  return `http://${bracketed(address)}:${port}`
}
