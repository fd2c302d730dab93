// Whatever undici or Node's TLS stack throws, said as what to check (src/upstream/failures.ts): one
// cause for logs and metrics, a status for the client, and a message that names the setting.
import t from 'tap'
import { ProxyError } from '../../../src/upstream/connect-proxy.js'
import { describeUpstreamError, UpstreamTimeout } from '../../../src/upstream/failures.js'

const upstream = { url: new URL('https://10.0.0.1:6443'), serverName: '10.0.0.1' }
const where = '10.0.0.1:6443'

/** An error as Node makes them: a message and a code, optionally wrapped by undici's own. */
function failure (code: string, message = `${code} happened`, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(message), { code }, extra)
}
const wrapped = (inner: Error, code = 'UND_ERR_SOCKET') => Object.assign(new Error('fetch failed', { cause: inner }), { code })

t.test('each failure: its cause, status and message', async (t) => {
  const cases: Array<[string, unknown, { httpStatus: number; cause: string; message: string; misconfigured?: true }]> = [
    ['our connect timer', new UpstreamTimeout('connect'), { httpStatus: 504, cause: 'timeout', message: `timed out connecting to upstream ${where} (--connect-timeout)` }],
    ['our response timer', new UpstreamTimeout('response'), { httpStatus: 504, cause: 'timeout', message: `upstream ${where} did not answer in time (--response-timeout)` }],
    ['undici\'s connect timer', wrapped(failure('UND_ERR_CONNECT_TIMEOUT')), { httpStatus: 504, cause: 'timeout', message: `timed out connecting to upstream ${where} (--connect-timeout)` }],
    ['undici\'s headers timer', failure('UND_ERR_HEADERS_TIMEOUT'), { httpStatus: 504, cause: 'timeout', message: `upstream ${where} did not answer in time (--response-timeout)` }],
    ['the kernel\'s', failure('ETIMEDOUT'), { httpStatus: 504, cause: 'timeout', message: `upstream ${where} did not answer in time (--response-timeout)` }],
    ['a CA that did not sign it', wrapped(failure('UNABLE_TO_VERIFY_LEAF_SIGNATURE')),
      { httpStatus: 502, cause: 'tls', message: 'upstream certificate is not signed by the CA in --cacert (UNABLE_TO_VERIFY_LEAF_SIGNATURE)', misconfigured: true }],
    ['a self-signed one', failure('DEPTH_ZERO_SELF_SIGNED_CERT'),
      { httpStatus: 502, cause: 'tls', message: 'upstream certificate is not signed by the CA in --cacert (DEPTH_ZERO_SELF_SIGNED_CERT)', misconfigured: true }],
    ['another name', failure('ERR_TLS_CERT_ALTNAME_INVALID', 'Hostname/IP does not match', { cert: { subjectaltname: 'DNS:kubernetes, IP Address:10.96.0.1' } }),
      { httpStatus: 502, cause: 'tls', message: 'upstream certificate is not valid for the name \'10.0.0.1\'; set --tls-server-name to a name it holds (DNS:kubernetes, IP Address:10.96.0.1)', misconfigured: true }],
    ['another name, its names unknown', failure('ERR_TLS_CERT_ALTNAME_INVALID'),
      { httpStatus: 502, cause: 'tls', message: 'upstream certificate is not valid for the name \'10.0.0.1\'; set --tls-server-name to a name it holds', misconfigured: true }],
    ['expired', failure('CERT_HAS_EXPIRED'), { httpStatus: 502, cause: 'tls', message: 'upstream certificate has expired' }],
    ['not yet valid', failure('CERT_NOT_YET_VALID'), { httpStatus: 502, cause: 'tls', message: 'upstream certificate is not valid yet (check this machine\'s clock)' }],
    ['our certificate refused', failure('ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE'),
      { httpStatus: 502, cause: 'tls', message: 'upstream rejected our client certificate (ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE)' }],
    ['no certificate sent (TLS 1.3)', failure('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED'),
      { httpStatus: 502, cause: 'tls', message: 'upstream rejected our client certificate (ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED)' }],
    // A plain HTTP port: not OpenSSL's raw words, but what they mean (and the settings must change).
    ['no TLS at all', wrapped(failure('ERR_SSL_WRONG_VERSION_NUMBER', '808C0BF4B67F0000:error:0A00010B:SSL routines:ssl3_get_record:wrong version number')),
      { httpStatus: 502, cause: 'tls', message: `the API server at ${where} does not speak TLS on that port (is it plain HTTP? try the https port)`, misconfigured: true }],
    ['no TLS, a longer reply', failure('ERR_SSL_PACKET_LENGTH_TOO_LONG'),
      { httpStatus: 502, cause: 'tls', message: `the API server at ${where} does not speak TLS on that port (is it plain HTTP? try the https port)`, misconfigured: true }],
    ['another TLS failure', failure('ERR_SSL_NO_PROTOCOLS_AVAILABLE', 'no protocols available'),
      { httpStatus: 502, cause: 'tls', message: `TLS handshake with upstream ${where} failed: no protocols available` }],
    ['refused', wrapped(failure('ECONNREFUSED')),
      { httpStatus: 502, cause: 'refused', message: `upstream ${where} refused the connection (is the API server running, and is the port right?)` }],
    ['unreachable', failure('EHOSTUNREACH'), { httpStatus: 502, cause: 'refused', message: `upstream ${where} is unreachable (EHOSTUNREACH)` }],
    ['no such name', failure('ENOTFOUND'), { httpStatus: 502, cause: 'dns', message: 'upstream host 10.0.0.1 cannot be resolved' }],
    ['reset', wrapped(failure('ECONNRESET', 'read ECONNRESET')),
      { httpStatus: 502, cause: 'reset', message: `upstream ${where} closed the connection (read ECONNRESET); if this happens at once, it may have rejected our client certificate` }],
    ['closed by the other side', failure('UND_ERR_SOCKET', 'other side closed'),
      { httpStatus: 502, cause: 'reset', message: `upstream ${where} closed the connection (other side closed); if this happens at once, it may have rejected our client certificate` }],
    ['the CONNECT proxy on the way', wrapped(new ProxyError('proxy proxy.corp:3128 answered 407 to CONNECT', failure('ECONNRESET'))),
      { httpStatus: 502, cause: 'refused', message: 'proxy proxy.corp:3128 answered 407 to CONNECT' }],
    ['anything else', new Error('boom'), { httpStatus: 502, cause: 'other', message: `request to upstream ${where} failed: boom` }],
    ['not even an Error', 'a string', { httpStatus: 502, cause: 'other', message: `request to upstream ${where} failed: unknown error` }],
  ]
  for (const [name, err, expected] of cases) {
    const said = describeUpstreamError(err, upstream)
    t.same(said, { reason: expected.httpStatus === 504 ? 'Timeout' : 'BadGateway', ...expected }, name)
  }
})

t.test('the upstream is named as its URL says, the name checked as --tls-server-name says', async (t) => {
  const named = { url: new URL('https://[fd00::1]:6443'), serverName: 'api.internal' }
  t.match(describeUpstreamError(failure('ECONNREFUSED'), named), { message: /^upstream \[fd00::1\]:6443 refused/ })
  t.match(describeUpstreamError(failure('ERR_TLS_CERT_ALTNAME_INVALID'), named), { message: /not valid for the name 'api\.internal'/ })
  t.match(describeUpstreamError(failure('ENOTFOUND'), { url: new URL('https://api.example.org'), serverName: 'api.example.org' }),
    { message: 'upstream host api.example.org cannot be resolved' })
})

t.test('a chain of causes that loops, or a certificate\'s very long name list, is read within bounds', async (t) => {
  const looping = failure('ECONNREFUSED')
  Object.assign(looping, { cause: looping })
  t.equal(describeUpstreamError(looping, upstream).cause, 'refused')
  const long = failure('ERR_TLS_CERT_ALTNAME_INVALID', 'no match', { cert: { subjectaltname: `DNS:${'a'.repeat(10_000)}` } })
  t.ok(describeUpstreamError(long, upstream).message.length < 500, 'the names it holds are cut')
})

t.test('a connection closed at once is worded for the credential: a certificate refused, or one wanted from a token\'s user', async (t) => {
  const closed = failure('UND_ERR_SOCKET', 'other side closed')
  t.match(describeUpstreamError(closed, { ...upstream, clientCertificate: true }), { message: /it may have rejected our client certificate$/ })
  t.match(describeUpstreamError(closed, { ...upstream, clientCertificate: false }), { message: /if this happens at once, it may want a client certificate$/ })
})
