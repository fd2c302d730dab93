// What crosses the proxy and what does not.
import type { IncomingHttpHeaders } from 'node:http'

// Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection, not the message.
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'http2-settings',
])

// What a Connection header may list without naming a header to drop.
const NAMES_NO_HEADER = new Set([...HOP_BY_HOP, 'close'])

// Never sent upstream: the client certificate is the identity, so a caller's credentials must
// not reach the API server (a token there would act as someone else, or leak). Expect is
// answered by this proxy itself. The rest claim who the caller is: the API server writes
// X-Forwarded-For and X-Real-Ip into its audit log, and X-Remote-User/-Group/-Uid/-Extra-* are the
// front-proxy identity headers it trusts from a client certificate like ours; only we may say those.
// Gateways in front of an API server may honour the last few: a method override or a rewritten URL
// would dodge --reject-methods and --reject-paths, a client-certificate header would claim an identity.
const REQUEST_ONLY_DROP = new Set([
  'authorization', 'expect', 'forwarded', 'x-real-ip', 'x-client-ip', 'true-client-ip', 'x-cluster-client-ip',
  'x-http-method-override', 'x-http-method', 'x-method-override', 'x-original-url', 'x-rewrite-url', 'x-original-uri'])
const REQUEST_ONLY_DROP_PREFIXES = ['x-forwarded-', 'x-remote-', 'x-ssl-', 'ssl-client-', 'x-client-cert']

// How a browser sends a bearer token over WebSocket (it cannot set Authorization): a subprotocol.
// Like Authorization, it is the caller's credential and stays here; the other subprotocols pass.
const BEARER_SUBPROTOCOL = /^base64url\.bearer\.authorization\.k8s\.io\./i

/** The header names a Connection header lists: hop-by-hop for this message too. */
function connectionNamed (value: unknown): string[] {
  if (typeof value !== 'string') return []
  return value.toLowerCase().split(',').map((t) => t.trim()).filter(Boolean)
}

function droppedFromRequest (lower: string, named: string[]): boolean {
  return HOP_BY_HOP.has(lower) || lower.startsWith('proxy-') || REQUEST_ONLY_DROP.has(lower) || named.includes(lower) ||
    REQUEST_ONLY_DROP_PREFIXES.some((p) => lower.startsWith(p))
}

/** Whether a request's headers announce a body (a length above zero, or a transfer coding). */
export function declaresBody (headers: IncomingHttpHeaders): boolean {
  const length = headers['content-length']
  return headers['transfer-encoding'] !== undefined || (length !== undefined && Number(length) !== 0)
}

function withoutBearer (subprotocols: string): string {
  if (!subprotocols.toLowerCase().includes('bearer')) return subprotocols
  return subprotocols.split(',').map((p) => p.trim()).filter((p) => p !== '' && !BEARER_SUBPROTOCOL.test(p)).join(', ')
}

export interface ForwardedFor {
  /** the upstream's host:port */
  host: string
  /** the caller's address, for X-Forwarded-For */
  clientAddress: string | undefined
  /** a tunnel: the Upgrade header passes, and Connection asks for it */
  upgrade: boolean
}

/**
 * Headers for the request to the API server, from the caller's raw list (name, value, …), as a
 * flat list of the same shape: repeated headers (Impersonate-Group, X-Stream-Protocol-Version) stay
 * separate lines, in order; joined with commas they would mean something else. Impersonate-* pass,
 * so `kubectl --as` works.
 */
export function upstreamRequestHeaders (raw: readonly string[], connection: string | undefined, to: ForwardedFor): string[] {
  const named = connectionNamed(connection)
  const out: string[] = []
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase()
    if (lower === 'host' || (droppedFromRequest(lower, named) && !(to.upgrade && lower === 'upgrade'))) continue
    const value = lower === 'sec-websocket-protocol' ? withoutBearer(raw[i + 1]!) : raw[i + 1]!
    if (value !== '' || lower !== 'sec-websocket-protocol') out.push(lower, value)
  }
  out.push('host', to.host)
  if (to.upgrade) out.push('connection', 'Upgrade')
  if (to.clientAddress) out.push('x-forwarded-for', to.clientAddress)
  out.push('x-forwarded-proto', 'http')
  return out
}

/**
 * Headers for the response to the caller, from the upstream's raw header list (name, value, …),
 * as the flat list `writeHead` takes: repeated headers such as Set-Cookie stay separate lines. The
 * API server's own CORS lines never pass: which pages may read an answer is the proxy's decision
 * (--allow-origin, admission/cors.ts).
 */
export function clientResponseHeaders (raw: ReadonlyArray<Buffer | string>): string[] {
  const out: string[] = []
  // What a Connection header names besides the hop-by-hop headers ("keep-alive", "close"), rarely anything.
  let named: string[] | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const lower = latin1(raw[i]!).toLowerCase()
    if (HOP_BY_HOP.has(lower)) {
      const value = lower === 'connection' ? latin1(raw[i + 1]!).toLowerCase() : undefined
      // Nearly always `keep-alive` or `close`, which name no other header.
      if (value !== undefined && !NAMES_NO_HEADER.has(value)) {
        const more = connectionNamed(value).filter((name) => !NAMES_NO_HEADER.has(name))
        if (more.length > 0) named = (named ?? []).concat(more)
      }
    } else if (!lower.startsWith('proxy-') && !lower.startsWith('access-control-')) {
      out.push(lower, latin1(raw[i + 1]!))
    }
  }
  // One pass on the common path; a second only when the Connection header named another header.
  return named ? withoutNamed(out, named) : out
}

function withoutNamed (headers: string[], named: string[]): string[] {
  const kept: string[] = []
  for (let i = 0; i < headers.length; i += 2) if (!named.includes(headers[i]!)) kept.push(headers[i]!, headers[i + 1]!)
  return kept
}

// undici hands raw header bytes; node:http, strings it read as latin1.
const latin1 = (b: Buffer | string): string => (typeof b === 'string' ? b : b.toString('latin1'))
