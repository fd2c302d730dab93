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

function connectionNamed(headers: IncomingHttpHeaders): string[] {
  const value = headers.connection
  if (typeof value !== 'string') return []
  return value.toLowerCase().split(',').map((t) => t.trim()).filter(Boolean)
}

function strip(headers: IncomingHttpHeaders, extra?: Set<string>): IncomingHttpHeaders {
  const named = connectionNamed(headers)
  const out: IncomingHttpHeaders = {}
  for (const name in headers) {
    const lower = name.toLowerCase()
    if (HOP_BY_HOP.has(lower) || lower.startsWith('proxy-') || extra?.has(lower) || named.includes(lower)) continue
    if (headers[name] !== undefined) out[lower] = headers[name]
  }
  return out
}

/** Headers for the request to the API server. Impersonate-* pass, so `kubectl --as` works. */
export function upstreamRequestHeaders(headers: IncomingHttpHeaders, clientAddress: string | undefined): IncomingHttpHeaders {
  const out = strip(headers, REQUEST_ONLY_DROP)
  if (clientAddress) out['x-forwarded-for'] = clientAddress
  out['x-forwarded-proto'] = 'http'
  return out
}

/** Headers for the response to the caller. */
export function clientResponseHeaders(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  return strip(headers)
}
