// An HTTP CONNECT proxy on the way to the API server, as kubectl chooses and uses it: a cluster's
// proxy-url first, else HTTPS_PROXY unless NO_PROXY exempts the server (Go's httpproxy rules, which
// kubectl follows: loopback is never proxied). The tunnel is opened with node:http(s)' own CONNECT;
// the TLS to the API server then runs inside it.
import { request as httpRequest, type ClientRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { BlockList, isIP, type Socket } from 'node:net'
import * as tls from 'node:tls'
import { UsageError } from '../util/errors.js'
import { unbracketed } from '../util/addresses.js'

export interface ProxyEnvironment {
  httpsProxy: string | undefined
  noProxy: string | undefined
}

/** HTTPS_PROXY and NO_PROXY (or their lower-case forms, as Go reads them). */
export function proxyEnvironment (env: NodeJS.ProcessEnv): ProxyEnvironment {
  return {
    httpsProxy: env.HTTPS_PROXY || env.https_proxy || undefined,
    noProxy: env.NO_PROXY || env.no_proxy || undefined,
  }
}

/**
 * A URL as messages may show it, parsed or not: everything up to its last @ after the scheme is
 * hidden. A password may hold `/`, `?` or `#` (which end the authority of a URL that parses) and Go
 * takes a bare `user:password@host:port`: a typo in either must not put the password in a log.
 */
export function withoutUserinfo (text: string): string {
  const at = text.lastIndexOf('@')
  if (at < 0) return text
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(text)?.[0] ?? ''
  return `${scheme}…${text.slice(at)}`
}

function connectProxyUrl (text: string, label: string): URL {
  let url: URL
  try {
    // Go takes a bare host:port as http://host:port.
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`)
  } catch {
    throw new UsageError(`${label} '${withoutUserinfo(text)}' is not a URL; expected e.g. http://proxy.example.com:3128`)
  }
  try {
    decodeURIComponent(url.username)
    decodeURIComponent(url.password)
  } catch {
    throw new UsageError(`${label}: the user name or password is not valid percent-encoding (write % as %25)`)
  }
  if (url.protocol === 'socks5:' || url.protocol === 'socks5h:') {
    throw new UsageError(`${label}: socks5 proxies are not supported by mtls-proxy; use an http:// or https:// (CONNECT) proxy`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`${label} must be an http:// or https:// proxy, got '${url.protocol}'`)
  }
  return url
}

/** The proxy to reach `target` through, or undefined for a direct connection. */
export function proxyFor (target: URL, kubeconfigProxy: string | undefined, env: ProxyEnvironment): URL | undefined {
  if (kubeconfigProxy) return connectProxyUrl(kubeconfigProxy, 'kubeconfig proxy-url')
  if (!env.httpsProxy) return undefined
  const host = unbracketed(target.hostname).toLowerCase()
  if (host === 'localhost' || isLoopbackIp(host) || exempt(host, target.port || '443', env.noProxy ?? '')) return undefined
  return connectProxyUrl(env.httpsProxy, 'HTTPS_PROXY')
}

function isLoopbackIp (host: string): boolean {
  const family = isIP(host)
  if (family === 4) return host.startsWith('127.')
  return family === 6 && (host === '::1' || host === '0:0:0:0:0:0:0:1')
}

/** NO_PROXY as Go reads it: `*`, IPs, CIDRs, domains (with their subdomains; a leading dot: subdomains only), optional :port. */
export function exempt (host: string, port: string, noProxy: string): boolean {
  for (const raw of noProxy.split(',')) {
    let entry = raw.trim().toLowerCase()
    if (entry === '') continue
    if (entry === '*') return true
    if (entry.includes('/')) {
      if (inCidr(host, entry)) return true
      continue
    }
    let entryPort: string | undefined
    const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(entry)
    if (m) {
      entry = m[1]!
      entryPort = m[2]
    }
    entry = unbracketed(entry)
    if (entryPort !== undefined && entryPort !== port) continue
    if (isIP(entry)) {
      if (sameAddress(entry, host)) return true
      continue
    }
    if (entry.startsWith('*.')) entry = entry.slice(1)
    if (entry.startsWith('.')) {
      if (host.endsWith(entry)) return true
    } else if (host === entry || host.endsWith(`.${entry}`)) return true
  }
  return false
}

/** The same IP address however it is written (`fd00::1`, `FD00:0:0::1`). */
function sameAddress (a: string, b: string): boolean {
  const family = isIP(a)
  if (family === 0 || isIP(b) !== family) return false
  const list = new BlockList()
  list.addAddress(a, family === 4 ? 'ipv4' : 'ipv6')
  return list.check(b, family === 4 ? 'ipv4' : 'ipv6')
}

function inCidr (host: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/') as [string, string]
  const family = isIP(base)
  if (family === 0 || isIP(host) !== family || !/^\d{1,3}$/.test(bits)) return false
  const list = new BlockList()
  try {
    list.addSubnet(base, Number(bits), family === 4 ? 'ipv4' : 'ipv6')
  } catch {
    return false
  }
  return list.check(host, family === 4 ? 'ipv4' : 'ipv6')
}

/** The proxy as logs and /-/status may show it: never its user name or password. */
export function displayProxy (proxy: URL): string {
  return `${proxy.protocol}//${proxy.host}`
}

/**
 * Opens a tunnel to host:port through the proxy: CONNECT, with Proxy-Authorization: Basic from the
 * URL's user and password. Calls back with the raw tunnel socket, or an error naming the proxy.
 */
export function openTunnel (proxy: URL, host: string, port: number, callback: (err: Error | null, socket?: Socket) => void): ClientRequest {
  const authority = `${isIP(host) === 6 ? `[${host}]` : host}:${port}`
  const headers: Record<string, string> = { host: authority }
  if (proxy.username || proxy.password) {
    const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`
    headers['proxy-authorization'] = `Basic ${Buffer.from(credentials).toString('base64')}`
  }
  const request = proxy.protocol === 'https:' ? httpsRequest : httpRequest
  const req = request({
    ...(proxy.protocol === 'https:' ? { ca: proxyCas() } : {}),
    host: unbracketed(proxy.hostname),
    port: Number(proxy.port || (proxy.protocol === 'https:' ? 443 : 80)),
    method: 'CONNECT',
    path: authority,
    headers,
    agent: false,
  })
  let done = false
  const finish = (err: Error | null, socket?: Socket) => {
    if (done) {
      socket?.destroy()
      return
    }
    done = true
    callback(err, socket)
  }
  req.once('connect', (res, socket, head) => {
    socket.on('error', () => {})
    if (res.statusCode !== 200) {
      socket.destroy()
      const answer = `${res.statusCode} ${printable(res.statusMessage ?? '')}`.trim()
      finish(new ProxyError(`proxy ${displayProxy(proxy)} refused CONNECT to ${authority}: ${answer}`))
      return
    }
    // The TLS client speaks first, so nothing can follow the answer yet; a proxy that sends more is not one to trust.
    if (head.length > 0) {
      socket.destroy()
      finish(new ProxyError(`proxy ${displayProxy(proxy)} sent data after its CONNECT answer`))
      return
    }
    finish(null, socket)
  })
  req.once('response', (res) => {
    res.resume()
    finish(new ProxyError(`proxy ${displayProxy(proxy)} answered CONNECT with ${res.statusCode}`))
  })
  req.once('error', (err) => finish(new ProxyError(`cannot reach proxy ${displayProxy(proxy)}: ${err.message}`, err)))
  req.end()
  return req
}

/**
 * The CAs an https:// proxy is checked against: Node.js's own (with NODE_EXTRA_CA_CERTS) and, where
 * Node.js can read it (22.15 and later), the operating system's store, where corporate CAs live.
 */
function proxyCas (): string[] | undefined {
  const read = (tls as { getCACertificates?: (which: string) => string[] }).getCACertificates
  if (!read) return undefined
  try {
    return [...read('default'), ...read('system')]
  } catch {
    return undefined
  }
}

// A reason phrase is the proxy's own words: as many as a message needs.
const MAX_REASON = 60

/** Another server's words, fit for a log line and an error body: printable ASCII only, and short. */
function printable (text: string): string {
  let out = ''
  for (const c of text.slice(0, MAX_REASON)) out += c >= ' ' && c <= '~' ? c : '?'
  return text.length > MAX_REASON ? `${out}…` : out
}

/** A failure of the proxy on the way, not of the API server. */
export class ProxyError extends Error {
  override name = 'ProxyError'
  constructor (message: string, original?: Error) {
    super(message)
    if (original && 'code' in original) (this as { code?: unknown }).code = (original as NodeJS.ErrnoException).code
  }
}
