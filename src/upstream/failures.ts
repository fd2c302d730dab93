// Turns whatever undici or Node's TLS stack threw into the one thing a user needs: which of
// "unreachable", "TLS failure" or "timeout" happened, in words that say what to check.
import type { ErrorAnswer } from '../doors/status.js'

/** The upstream took longer than allowed to connect (TLS handshake included) or to answer. */
export class UpstreamTimeout extends Error {
  override name = 'UpstreamTimeout'
  readonly phase: 'connect' | 'response'

  constructor (phase: 'connect' | 'response') {
    super(phase === 'connect' ? 'timed out connecting' : 'timed out waiting for the answer')
    this.phase = phase
  }
}

const NOT_TRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
])

// Alerts the server sends when it does not accept our client certificate.
const CLIENT_CERT_REJECTED = new RegExp(`ALERT_(${[
  'BAD_CERTIFICATE', 'UNKNOWN_CA', 'CERTIFICATE_REQUIRED', 'CERTIFICATE_UNKNOWN', 'CERTIFICATE_EXPIRED', 'CERTIFICATE_REVOKED',
  'UNSUPPORTED_CERTIFICATE', 'ACCESS_DENIED', 'DECRYPT_ERROR',
].join('|')})`)

// What OpenSSL says when the first bytes back are no TLS record (an HTTP server's `HTTP/1.1 400`, an
// SSH banner): its raw text ('SSL routines:ssl3_get_record:wrong version number') tells a user nothing.
const NOT_TLS = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG'])

// undici's own timeouts (the pool's connect and headers timers) and the kernel's.
const CONNECT_TIMEOUTS = new Set(['UND_ERR_CONNECT_TIMEOUT'])
const TIMEOUTS = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'ETIMEDOUT'])

export interface UpstreamFailure extends ErrorAnswer {
  /** refused, tls, timeout, reset, dns or other: a small fixed set, for logs and metrics */
  cause: 'refused' | 'tls' | 'timeout' | 'reset' | 'dns' | 'other'
  /** --cacert or the name does not fit the server: the user's settings must change, retrying will not help */
  misconfigured?: true
}

/** Every code on the chain of causes, innermost first: undici wraps the one that matters. */
function rootCodes (err: unknown): string[] {
  const codes: string[] = []
  let e = err as { code?: unknown; cause?: unknown } | undefined
  for (let depth = 0; e && depth < 8; depth++) {
    if (typeof e.code === 'string') codes.push(e.code)
    e = e.cause as typeof e
  }
  return codes.reverse()
}

function innermostMessage (err: unknown): string {
  let e = err as { message?: string; cause?: unknown } | undefined
  let message = ''
  for (let depth = 0; e && depth < 8; depth++) {
    if (e.message) message = e.message
    e = e.cause as typeof e
  }
  return message
}

/** The names the server's certificate holds, from Node's name-check error: `DNS:a, IP Address:10.0.0.1`. */
function namesHeld (err: unknown): string | undefined {
  let e = err as { cert?: { subjectaltname?: unknown }; cause?: unknown } | undefined
  for (let depth = 0; e && depth < 8; depth++) {
    const names = e.cert?.subjectaltname
    if (typeof names === 'string' && names !== '') return names.slice(0, 300)
    e = e.cause as typeof e
  }
  return undefined
}

/** The upstream as the messages name it. */
export interface UpstreamName {
  url: URL
  /** the name its certificate is checked for */
  serverName: string
  /** a client certificate goes with the connection; false: a bearer token alone (default: a certificate) */
  clientCertificate?: boolean
}

function timeout (err: unknown, codes: string[]): 'connect' | 'response' | undefined {
  if (err instanceof UpstreamTimeout) return err.phase
  if (codes.some((c) => TIMEOUTS.has(c))) return codes.some((c) => CONNECT_TIMEOUTS.has(c)) ? 'connect' : 'response'
  return undefined
}

export function describeUpstreamError (err: unknown, upstream: UpstreamName): UpstreamFailure {
  const codes = rootCodes(err)
  const code = codes[0] ?? ''
  const where = upstream.url.host
  const bad = (cause: UpstreamFailure['cause'], message: string): UpstreamFailure =>
    ({ httpStatus: 502, reason: 'BadGateway', cause, message })
  // The user's settings must change: retrying will not help.
  const misconfigured = (message: string): UpstreamFailure => ({ ...bad('tls', message), misconfigured: true })

  const timedOut = timeout(err, codes)
  if (timedOut) {
    const connect = timedOut === 'connect'
    return {
      httpStatus: 504,
      reason: 'Timeout',
      cause: 'timeout',
      message: connect
        ? `timed out connecting to upstream ${where} (--connect-timeout)`
        : `upstream ${where} did not answer in time (--response-timeout)`,
    }
  }
  // The proxy on the way (proxy-url, HTTPS_PROXY) failed, not the API server: its message names it.
  const viaProxy = proxyFailure(err)
  if (viaProxy) return bad('refused', viaProxy)
  if (NOT_TRUSTED.has(code)) return misconfigured(`upstream certificate is not signed by the CA in --cacert (${code})`)
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    const name = upstream.serverName
    const holds = namesHeld(err)
    return misconfigured(`upstream certificate is not valid for the name '${name}'; set --tls-server-name to a name it holds` +
      (holds ? ` (${holds})` : ''))
  }
  if (code === 'CERT_HAS_EXPIRED') return bad('tls', 'upstream certificate has expired')
  if (code === 'CERT_NOT_YET_VALID') return bad('tls', 'upstream certificate is not valid yet (check this machine\'s clock)')
  if (NOT_TLS.has(code)) {
    return misconfigured(`the API server at ${where} does not speak TLS on that port (is it plain HTTP? try the https port)`)
  }
  if (CLIENT_CERT_REJECTED.test(code)) return bad('tls', `upstream rejected our client certificate (${code})`)
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || code === 'EPROTO') {
    return bad('tls', `TLS handshake with upstream ${where} failed: ${innermostMessage(err)}`)
  }
  if (code === 'ECONNREFUSED') {
    return bad('refused', `upstream ${where} refused the connection (is the API server running, and is the port right?)`)
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return bad('dns', `upstream host ${upstream.url.hostname} cannot be resolved`)
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return bad('refused', `upstream ${where} is unreachable (${code})`)
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE') {
    // At once after the handshake, a server refusing a client certificate, or wanting one it was not given, does this.
    const hint = upstream.clientCertificate === false ? 'it may want a client certificate' : 'it may have rejected our client certificate'
    return bad('reset', `upstream ${where} closed the connection (${innermostMessage(err) || code}); if this happens at once, ${hint}`)
  }
  return bad('other', `request to upstream ${where} failed: ${innermostMessage(err) || 'unknown error'}`)
}

function proxyFailure (err: unknown): string | undefined {
  let e = err as { name?: string; message?: string; cause?: unknown } | undefined
  for (let depth = 0; e && depth < 8; depth++) {
    if (e.name === 'ProxyError') return e.message
    e = e.cause as typeof e
  }
  return undefined
}
