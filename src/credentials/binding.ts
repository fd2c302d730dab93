// A credential goes only to the server it was issued for. Each cluster's credentials are bound, when
// it starts, to its server: the URL, the name its certificate is checked for, whether it is checked
// at all, the CONNECT proxy on the way, and the kubeconfig cluster entry they came from. A later load
// that names another server (a kubeconfig edited, a context switched) is refused whole: the pool, its
// name check and the tunnels were made for the first, and a token read for one server must never
// ride on connections to another. The CA may be renewed in place (a new ca.crt in the same file, new
// certificate-authority-data in the same entry): that is the same server's, and refusing it would make
// every CA rotation a restart.
import { displayProxy } from '../upstream/connect-proxy.js'
import type { ServerEndpoint } from './source.js'

/** Plain data, so the --workers primary can hand it to every worker it starts. */
export interface ServerBinding {
  url: string
  tlsServerName: string | null
  insecure: boolean
  /** the whole URL, user and password included: compared, never shown */
  proxy: string | null
  /** the kubeconfig cluster entry the server was read from; null: the settings name it */
  cluster: string | null
}

export function bindingOf (server: ServerEndpoint): ServerBinding {
  return {
    url: server.url.href,
    tlsServerName: server.tlsServerName ?? null,
    insecure: server.insecureSkipTlsVerify,
    proxy: server.proxy?.href ?? null,
    cluster: server.kubeconfigCluster ?? null,
  }
}

export function sameBinding (a: ServerBinding, b: ServerBinding): boolean {
  return a.url === b.url && a.tlsServerName === b.tlsServerName && a.insecure === b.insecure && a.proxy === b.proxy &&
    a.cluster === b.cluster
}

/** For messages and /-/status: never the proxy's user or password. */
export function describeBinding (b: ServerBinding): string {
  const url = new URL(b.url)
  return `${url.origin}${url.pathname.replace(/\/$/, '')}` +
    (b.cluster !== null ? ` (kubeconfig cluster '${b.cluster}')` : '') +
    (b.tlsServerName !== null ? ` (certificate name ${b.tlsServerName})` : '') +
    (b.insecure ? ' (certificate not verified)' : '') +
    (b.proxy !== null ? ` via ${displayProxy(new URL(b.proxy))}` : '')
}
