// Who may use the proxy: only requests addressed to this machine's loopback names, and none
// from a web page unless its origin was allowed.
import type { IncomingHttpHeaders } from 'node:http'
import type { Refusal } from './status.js'

// DNS rebinding: a web page can make the browser send requests to 127.0.0.1 under its own
// host name. The browser still sends that name as Host, so only loopback names are accepted.
export const DEFAULT_ACCEPTED_HOSTS: readonly string[] = ['localhost', '127.0.0.1', '::1']

const WILDCARD_ADDRESSES = new Set(['0.0.0.0', '::'])

/** The loopback names, plus the address the proxy listens on when the user chose another one. */
export function acceptedHosts(listenAddress: string): Set<string> {
  const hosts = new Set(DEFAULT_ACCEPTED_HOSTS)
  if (!WILDCARD_ADDRESSES.has(listenAddress)) hosts.add(listenAddress.toLowerCase())
  return hosts
}

/** The host part of a Host header or URL authority: `[::1]:8001` → `::1`. */
export function hostName(authority: string): string | undefined {
  const a = authority.trim().toLowerCase()
  const bracketed = /^\[([0-9a-f:.]+)\](?::\d*)?$/.exec(a)
  if (bracketed) return bracketed[1]
  const plain = /^([a-z0-9.-]+)(?::\d*)?$/.exec(a)
  return plain?.[1]
}

const forbidden = (message: string): Refusal => ({ code: 403, reason: 'Forbidden', message })

export interface GuardOptions {
  hosts: ReadonlySet<string>
  /** origins (scheme://host:port) whose pages may call the proxy */
  allowOrigins: readonly string[]
}

/**
 * A web page in the user's browser can reach 127.0.0.1 with the right Host (XSRF, and WebSockets
 * are not bound by CORS: a page could open `kubectl exec`). Browsers mark such requests with
 * Origin and Sec-Fetch-Site; curl, kubectl and scripts send neither.
 */
function checkBrowser(headers: IncomingHttpHeaders, allowOrigins: readonly string[]): Refusal | undefined {
  const origin = headers.origin
  if (origin !== undefined && !allowOrigins.includes(origin)) {
    return forbidden(`requests from web pages are refused (Origin: ${origin.slice(0, 100)}); if that page should use the proxy, start it with --allow-origin ${origin.slice(0, 100)}`)
  }
  const site = headers['sec-fetch-site']
  if ((site === 'cross-site' || site === 'same-site') && origin === undefined) {
    return forbidden(`requests from web pages are refused (Sec-Fetch-Site: ${site}); open the API through curl or kubectl instead`)
  }
  return undefined
}

/** The whole admission decision for a request or an upgrade. target: the request target as the client sent it. */
export function checkRequest(target: string, headers: IncomingHttpHeaders, options: GuardOptions): Refusal | undefined {
  return checkTarget(target, headers.host, options.hosts) ?? checkBrowser(headers, options.allowOrigins)
}

function checkTarget(target: string, host: string | undefined, hosts: ReadonlySet<string>): Refusal | undefined {
  if (!target.startsWith('/')) {
    // absolute-form (`GET http://host/ HTTP/1.1`): a client using us as a forward proxy.
    let authority: string | undefined
    try {
      const parsed = new URL(target)
      authority = parsed.protocol === 'http:' ? parsed.host : undefined
    } catch { /* '*' and other non-URLs */ }
    const name = authority === undefined ? undefined : hostName(authority)
    if (name === undefined || !hosts.has(name)) {
      return forbidden(`mtls-proxy is not an open proxy: it forwards only to its upstream; send the path (GET /api/... HTTP/1.1), not '${target.slice(0, 100)}'`)
    }
  }
  // HTTP/1.1 requires Host (Node answers 400 without it); an HTTP/1.0 client may omit it and is no browser.
  if (host === undefined) return undefined
  const name = hostName(host)
  if (name === undefined || !hosts.has(name)) {
    return forbidden(`Host '${host.slice(0, 100)}' is not accepted: mtls-proxy answers only requests addressed to localhost, 127.0.0.1 or [::1] (this blocks DNS rebinding from web pages)`)
  }
  return undefined
}

/** Path and query of an absolute-form target, so routing sees what the guard accepted. */
export function originForm(target: string): string {
  if (target.startsWith('/')) return target
  try {
    const parsed = new URL(target)
    return parsed.pathname + parsed.search
  } catch {
    return target
  }
}
