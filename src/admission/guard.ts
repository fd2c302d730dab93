// Who may use the proxy, and for what: one decision for every way in (ordinary requests,
// `Connection: Upgrade` requests, the status listener). Each check stops an attack; SECURITY.md names them.
import { timingSafeEqual } from 'node:crypto'
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import { networkInterfaces } from 'node:os'
import { declaresBody } from '../forwarding/headers.js'
import { bracketed } from '../util/addresses.js'
import { tokenDigest, type CallerTokenState } from './caller-token.js'
import type { RequestTarget } from './target.js'
import type { ErrorAnswer } from '../doors/status.js'

export interface GuardOptions {
  /** Host names (port removed, IPv6 in brackets) that are served */
  acceptHosts: readonly RegExp[]
  /** origins (scheme://host:port) whose pages may call the proxy */
  allowOrigins: readonly string[]
  acceptPaths: readonly RegExp[]
  rejectPaths: readonly RegExp[]
  rejectMethods: readonly RegExp[]
  /** the token callers must present (--token-file), as read now; undefined: none needed */
  callerToken: () => CallerTokenState | undefined
  /** the TCP port this listener is bound to (an absolute-form target must name it); undefined on a Unix socket */
  listenPort: () => number | undefined
  /** what this listener speaks */
  scheme: 'http' | 'https'
  /** admit an Origin naming this listener from a client that is no browser (see sameOrigin) */
  admitOwnOrigin: boolean
}

/** The main listener's guard: the settings, plus what only the running proxy knows. */
export function listenerGuard (
  config: Pick<GuardOptions, 'allowOrigins' | 'acceptPaths' | 'rejectPaths' | 'rejectMethods'> &
    { acceptHosts: RegExp[]; address: string; https: boolean },
  callerToken: () => CallerTokenState | undefined,
  listenPort: () => number | undefined
): GuardOptions {
  return {
    acceptHosts: hostPatterns(config.acceptHosts, config.address),
    allowOrigins: config.allowOrigins,
    acceptPaths: config.acceptPaths,
    rejectPaths: config.rejectPaths,
    rejectMethods: config.rejectMethods,
    callerToken,
    listenPort,
    scheme: config.https ? 'https' : 'http',
    admitOwnOrigin: true,
  }
}

/**
 * Path rules that name a cluster prefix, which never match with several clusters: the rules judge the
 * path after /clusters/NAME. Such a rule matches a path under a served prefix and not the same path
 * without it, or says `/clusters/` outright.
 */
export function rulesNamingPrefix (
  rules: Array<{ flag: string; patterns: readonly RegExp[] }>, names: readonly string[]
): string[] {
  const path = '/api/v1/namespaces/default/pods'
  // As the user wrote it: RegExp.source escapes every slash.
  const written = (p: RegExp) => p.source.replaceAll('\\/', '/')
  return rules.flatMap(({ flag, patterns }) => patterns.filter((p) =>
    written(p).includes('clusters/') || names.some((n) => p.test(`/clusters/${n}${path}`) && !p.test(path)))
    .map((p) => `${flag} '${written(p)}' never matches: with several clusters the path rules judge the path after /clusters/NAME (^/api/v1/secrets applies to every cluster); to leave a cluster out, leave it out of the kubeconfig or the config file's clusters:`))
}

/** The way a request came in: Node hands `Connection: Upgrade` requests past Fastify, to our tunnels. */
export type Door = 'request' | 'upgrade'

// Methods the Kubernetes API uses. TRACE, CONNECT and WebDAV's are not among them and are refused.
export const FORWARDED_METHODS = ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT', 'OPTIONS']
const FORWARDED = new Set(FORWARDED_METHODS)

// The proxy's own endpoints live under this prefix; they are answered here, never forwarded.
const OWN_PREFIX = '/-/'

// Far beyond any real client (kubectl sends about ten); past it, a request is an attack or a bug.
const MAX_HEADER_FIELDS = 100

// Probes (kubelet, Docker HEALTHCHECK) carry no token and learn nothing from these two. Asked with a
// query (`/-/readyz?cluster=NAME` names clusters and their faults), they need it like /-/status.
const OPEN_ENDPOINTS = new Set(['/-/healthz', '/-/readyz'])

const WILDCARD_ADDRESSES = new Set(['0.0.0.0', '::'])

/**
 * The configured Host patterns, plus the names requests to the listen address carry: that address,
 * or for a wildcard, this machine's own IP addresses as they are at start. Addresses only: a host
 * name is looked up, and a lookup is what an attacker answers in DNS rebinding.
 */
export function hostPatterns (patterns: readonly RegExp[], listenAddress: string): RegExp[] {
  const own = WILDCARD_ADDRESSES.has(listenAddress) ? Object.values(networkInterfaces()).flat().map((i) => i!.address) : [listenAddress]
  return [...patterns, ...own.map((a) => exactly(bracketed(a)))]
}

const exactly = (name: string) => new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'i')

/** The host part of a Host header or URL authority, lower-cased, IPv6 kept in brackets: `[::1]:8001` → `[::1]`. */
export function hostName (authority: string): string | undefined {
  const a = authority.trim().toLowerCase()
  const inBrackets = /^(\[[0-9a-f:.]+\])(?::\d*)?$/.exec(a)
  if (inBrackets) return inBrackets[1]
  return /^([a-z0-9.-]+)(?::\d*)?$/.exec(a)?.[1]
}

const forbidden = (message: string): ErrorAnswer => ({ httpStatus: 403, reason: 'Forbidden', message })
const matches = (name: string, patterns: readonly RegExp[]) => patterns.some((p) => p.test(name))

// DNS rebinding: a web page can make the browser send requests to 127.0.0.1 under its own host
// name. The browser still sends that name as Host, so only accepted names are served.
function checkHost (target: string, host: string | undefined, options: GuardOptions): ErrorAnswer | undefined {
  const { acceptHosts } = options
  // Node answers 400 to HTTP/1.1 without Host; HTTP/1.0 may omit it, but then no name can be checked.
  if (host === undefined) return { httpStatus: 400, reason: 'BadRequest', message: 'a Host header is required (HTTP/1.0 requests too)' }
  if (!target.startsWith('/')) {
    // absolute-form (`GET http://host:port/ HTTP/1.1`): a client using us as a forward proxy. Only a
    // URL of this very listener is ours; any other would be answered with our upstream's data.
    let parsed: URL | undefined
    try {
      parsed = new URL(target)
    } catch { /* '*' and other non-URLs */ }
    const name = parsed?.protocol === `${options.scheme}:` ? hostName(parsed.host) : undefined
    const port = Number(parsed?.port || (options.scheme === 'https' ? 443 : 80))
    if (name === undefined || !matches(name, acceptHosts) || port !== options.listenPort()) {
      return forbidden(`mtls-proxy is not an open proxy: it forwards only to its upstream; send the path (GET /api/... HTTP/1.1), not '${target.slice(0, 100)}'`)
    }
  }
  const name = hostName(host)
  if (name === undefined || !matches(name, acceptHosts)) {
    return forbidden(`Host '${host.slice(0, 100)}' is not accepted: mtls-proxy answers only requests addressed to localhost, 127.0.0.1 or [::1] (this blocks DNS rebinding from web pages); see --accept-hosts`)
  }
  return undefined
}

// A web page in the user's browser can reach 127.0.0.1 with the right Host (XSRF; and WebSockets
// are not bound by CORS, so a page could open `kubectl exec`). Browsers mark such requests with
// Origin and Sec-Fetch-Site; curl, kubectl and scripts send neither.
function checkBrowser (headers: IncomingHttpHeaders, options: GuardOptions): ErrorAnswer | undefined {
  const origin = headers.origin
  const admitted = origin === undefined || options.allowOrigins.includes(origin) ||
    (options.admitOwnOrigin && ownOriginFromNoBrowser(origin, headers, options.scheme))
  if (!admitted) return refusedOrigin(origin)
  const site = headers['sec-fetch-site']
  if ((site === 'cross-site' || site === 'same-site') && origin === undefined) {
    return forbidden(`requests from web pages are refused (Sec-Fetch-Site: ${site}); open the API through curl or kubectl instead`)
  }
  return undefined
}

function refusedOrigin (origin: string): ErrorAnswer {
  return forbidden(`requests from web pages are refused (Origin: ${origin.slice(0, 100)}); if that page should use the proxy, start it with --allow-origin ${origin.slice(0, 100)}`)
}

// WebSocket libraries send the URL they dial as Origin (Python's websocket-client does), which names
// the proxy itself: that is no foreign page. But a page the proxy itself serves (a service's or pod's
// /proxy/, passed through from the API server) has that origin too, and its script must not write or
// exec: so only a client that is no browser (browsers send Sec-Fetch-Site) is admitted this way, and
// only where the Host check has accepted the name (never on a status listener, which checks no Host).
function ownOriginFromNoBrowser (origin: string, headers: IncomingHttpHeaders, scheme: string): boolean {
  const host = headers.host
  if (host === undefined || headers['sec-fetch-site'] !== undefined) return false
  return origin.length === host.length + scheme.length + 3 && origin.toLowerCase() === `${scheme}://${host.toLowerCase()}`
}

// What works, by what the listener speaks: kubectl (client-go) never sends a token to an http:// server.
const TOKEN_HINT = {
  https: 'with kubectl: --token "$(cat TOKEN_FILE)"; with curl: -H "Authorization: Bearer $(cat TOKEN_FILE)"',
  http: 'with curl: -H "Authorization: Bearer $(cat TOKEN_FILE)"; kubectl sends a token only to an https:// server, so start the proxy with --listen-cert and --listen-key and use kubectl --server https://… --token "$(cat TOKEN_FILE)"',
}

// Other local users (a loopback port is open to every account) or the network: a shared secret.
// Compared as digests in constant time, so neither length nor prefix leaks through timing.
function checkToken (target: string, authorization: string | undefined, options: GuardOptions): ErrorAnswer | undefined {
  const wanted = options.callerToken()
  if (!wanted || OPEN_ENDPOINTS.has(target)) return undefined
  // Its file cannot be read: nobody is let in until it can (the log and /-/readyz say why).
  if ('broken' in wanted) {
    const message = 'mtls-proxy refuses every caller until its --token-file holds a token again'
    return { httpStatus: 401, reason: 'Unauthorized', message }
  }
  const presented = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1]
  if (presented !== undefined && timingSafeEqual(tokenDigest(presented), wanted.digest)) return undefined
  const sent = presented === undefined ? '' : ' (the token sent is not it)'
  return {
    httpStatus: 401,
    reason: 'Unauthorized',
    message: wanted.run
      ? `mtls-proxy serves only the command it runs, which has its token in MTLS_PROXY_TOKEN and its CA in MTLS_PROXY_CACERT${sent}; with curl: --cacert "$MTLS_PROXY_CACERT" -H "Authorization: Bearer $MTLS_PROXY_TOKEN"; kubectl inside it needs nothing (its KUBECONFIG has both)`
      : `mtls-proxy needs Authorization: Bearer <the token in its --token-file>${sent}, the token of the proxy's own callers, not a token of the API server; ${TOKEN_HINT[options.scheme]}`,
  }
}

// The proxy's own endpoints are read-only and answer plain requests: neither door forwards them.
function checkOwn (method: string, headers: IncomingHttpHeaders, door: Door): ErrorAnswer | undefined {
  if (method !== 'GET' && method !== 'HEAD') {
    return {
      httpStatus: 405,
      reason: 'MethodNotAllowed',
      message: `mtls-proxy's own endpoints (${OWN_PREFIX}…) answer only GET and HEAD, not ${method}`
    }
  }
  if (door === 'upgrade') {
    return {
      httpStatus: 400,
      reason: 'BadRequest',
      message: `mtls-proxy's own endpoints (${OWN_PREFIX}…) do not upgrade (Upgrade: ${String(headers.upgrade).slice(0, 40)}); ask without it`
    }
  }
  return undefined
}

// The user's own limits (kubectl proxy's flags), judged on the path the API server will act on.
function checkRules (path: string, method: string, options: GuardOptions): ErrorAnswer | undefined {
  const rejectedMethod = options.rejectMethods.find((p) => p.test(method))
  if (rejectedMethod) {
    return {
      httpStatus: 405,
      reason: 'MethodNotAllowed',
      message: `method ${method} is refused by --reject-methods ${rejectedMethod.source}`
    }
  }
  if (!matches(path, options.acceptPaths)) {
    return forbidden(`path ${path.slice(0, 200)} is not accepted by --accept-paths ${options.acceptPaths.map((p) => p.source).join(',')}`)
  }
  const rejectedPath = options.rejectPaths.find((p) => p.test(path))
  if (rejectedPath) return forbidden(`path ${path.slice(0, 200)} is refused by --reject-paths ${rejectedPath.source}`)
  return undefined
}

// A tunnel's bytes start right after the request head; a body there would be taken for them, and
// the upstream would wait for it. The Kubernetes API's upgrade requests carry none.
function checkUpgradeBody (headers: IncomingHttpHeaders): ErrorAnswer | undefined {
  return declaresBody(headers) ? { httpStatus: 400, reason: 'BadRequest', message: 'an Upgrade request must not carry a body' } : undefined
}

function countHeader (rawHeaders: string[], name: string): number {
  let n = 0
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.length === name.length && rawHeaders[i]!.toLowerCase() === name) n++
  return n
}

type Judged = Pick<IncomingMessage, 'method' | 'headers' | 'rawHeaders'>

/** What every request must be, whatever it asks: bounded header lines, one Host, no fragment. */
function checkShape (target: string, req: Judged): ErrorAnswer | undefined {
  // Lines, not names: 150 repeated X-Dup lines are 150 fields (Node joins them into one value).
  if (req.rawHeaders.length / 2 > MAX_HEADER_FIELDS) {
    return { httpStatus: 431, reason: 'RequestHeaderFieldsTooLarge', message: `more than ${MAX_HEADER_FIELDS} header fields` }
  }
  // Node keeps the first of several Host headers; two names for one request is how smuggling starts (RFC 9112 §3.2).
  if (countHeader(req.rawHeaders, 'host') > 1) {
    return { httpStatus: 400, reason: 'BadRequest', message: 'more than one Host header' }
  }
  // Not valid in a request line (RFC 9112 §3.2). Judged with it, `…/exec#` dodges `exec$`; an
  // upstream that drops fragments would then act on `…/exec`.
  if (target.includes('#')) return { httpStatus: 400, reason: 'BadRequest', message: 'a fragment (#) is not allowed in a request target' }
  return undefined
}

/**
 * A CORS preflight (OPTIONS with Origin and Access-Control-Request-Method), judged as the request it
 * announces would be, but for the token: browsers never send credentials on a preflight, and its
 * answer reveals nothing. Only a listed origin passes; the proxy answers it itself.
 */
export function checkPreflight (target: RequestTarget, req: Judged, options: GuardOptions): ErrorAnswer | undefined {
  const { headers } = req
  const refusal = checkShape(target.raw, req) ?? checkHost(target.raw, headers.host, options)
  if (refusal) return refusal
  const origin = headers.origin ?? ''
  if (!options.allowOrigins.includes(origin)) return refusedOrigin(origin)
  const method = String(headers['access-control-request-method'])
  if (!FORWARDED.has(method)) {
    return { httpStatus: 405, reason: 'MethodNotAllowed', message: `method ${method.slice(0, 20)} is not forwarded` }
  }
  if (target.path === undefined) return { httpStatus: 400, reason: 'BadRequest', message: target.problem! }
  if (target.path.startsWith(OWN_PREFIX)) return checkOwn(method, headers, 'request')
  return checkRules(target.path, method, options)
}

/**
 * The whole admission decision, the same for every door, on the request's target as it was read once:
 * its shape and host as the client sent it, the path rules on what follows any cluster prefix.
 */
export function checkRequest (target: RequestTarget, req: Judged, options: GuardOptions, door: Door): ErrorAnswer | undefined {
  const { headers } = req
  const method = req.method ?? 'GET'
  const refusal = checkShape(target.raw, req) ??
    checkHost(target.raw, headers.host, options) ??
    checkBrowser(headers, options) ??
    checkToken(target.origin, headers.authorization, options)
  if (refusal) return refusal
  if (!FORWARDED.has(method)) {
    return {
      httpStatus: 405,
      reason: 'MethodNotAllowed',
      message: `method ${method.slice(0, 20)} is not forwarded`
    }
  }
  if (target.path === undefined) return { httpStatus: 400, reason: 'BadRequest', message: target.problem! }
  // The forwarding rules do not apply to what is never forwarded.
  if (target.path.startsWith(OWN_PREFIX)) return checkOwn(method, headers, door)
  return checkRules(target.path, method, options) ?? (door === 'upgrade' ? checkUpgradeBody(headers) : undefined)
}
