// What crosses the proxy and what does not.
import type { IncomingHttpHeaders } from 'node:http'

// Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection, not the message.
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'http2-settings',
])

// Never sent upstream: the client certificate is the identity, so a caller's credentials must
// not reach the API server (a token there would act as someone else, or leak). Expect is
// answered by this proxy itself; forwarded X-Forwarded-* values from a caller could forge the
// source address that the API server writes into its audit log.
const REQUEST_ONLY_DROP = new Set(['authorization', 'expect', 'forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host'])

/** The header names a Connection header lists: hop-by-hop for this message too. */
export function connectionNamed(value: unknown): string[] {
  if (typeof value !== 'string') return []
  return value.toLowerCase().split(',').map((t) => t.trim()).filter(Boolean)
}

function dropped(lower: string, named: string[], extra?: Set<string>): boolean {
  return HOP_BY_HOP.has(lower) || lower.startsWith('proxy-') || extra?.has(lower) === true || named.includes(lower)
}

/** Whether a caller's request header stays behind (hop-by-hop, named in Connection, or the caller's credentials). */
export function droppedFromRequest(lower: string, named: string[]): boolean {
  return dropped(lower, named, REQUEST_ONLY_DROP)
}

/** Headers for the request to the API server. Impersonate-* pass, so `kubectl --as` works. */
export function upstreamRequestHeaders(headers: IncomingHttpHeaders, clientAddress: string | undefined): IncomingHttpHeaders {
  const named = connectionNamed(headers.connection)
  const out: IncomingHttpHeaders = {}
  for (const name in headers) {
    const lower = name.toLowerCase()
    if (!droppedFromRequest(lower, named) && headers[name] !== undefined) out[lower] = headers[name]
  }
  if (clientAddress) out['x-forwarded-for'] = clientAddress
  out['x-forwarded-proto'] = 'http'
  return out
}

/**
 * Headers for the response to the caller, from the upstream's raw header list (name, value, …),
 * as the flat list `writeHead` takes: repeated headers such as Set-Cookie stay separate lines.
 */
export function clientResponseHeaders(raw: Buffer[]): string[] {
  let named: string[] = []
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 10 && raw[i]!.toString('latin1').toLowerCase() === 'connection') named = named.concat(connectionNamed(raw[i + 1]!.toString('latin1')))
  }
  const out: string[] = []
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toString('latin1').toLowerCase()
    if (!dropped(lower, named)) out.push(lower, raw[i + 1]!.toString('latin1'))
  }
  return out
}
