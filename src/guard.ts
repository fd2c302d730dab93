// Who may use the proxy (first layer): only requests addressed to this machine's loopback names.
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

/** target: the request target as the client sent it; host: its Host header. */
export function checkRequest(target: string, host: string | undefined, hosts: ReadonlySet<string>): Refusal | undefined {
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
