// Which headers cross the proxy (src/forwarding/headers.ts): the caller's credentials and claims of
// identity stay here, hop-by-hop headers stay on their connection, repeated lines stay separate.
import t from 'tap'
import { clientResponseHeaders, declaresBody, upstreamRequestHeaders } from '../../../src/forwarding/headers.js'

const to = { host: 'k8s.example.org:6443', clientAddress: '127.0.0.1', upgrade: false }
const added = ['host', 'k8s.example.org:6443', 'x-forwarded-for', '127.0.0.1', 'x-forwarded-proto', 'http']

t.test('upstream: what passes, in order, repeated lines kept apart; Host replaced; X-Forwarded-For is the caller\'s address', async (t) => {
  const raw = ['Host', 'localhost:8001', 'Accept', 'application/json', 'Impersonate-User', 'jane', 'Impersonate-Group', 'a', 'Impersonate-Group', 'b',
    'X-Stream-Protocol-Version', 'v4.channel.k8s.io', 'X-Stream-Protocol-Version', 'v5.channel.k8s.io', 'Content-Type', 'application/apply-patch+yaml']
  t.same(upstreamRequestHeaders(raw, undefined, to), ['accept', 'application/json', 'impersonate-user', 'jane', 'impersonate-group', 'a',
    'impersonate-group', 'b', 'x-stream-protocol-version', 'v4.channel.k8s.io', 'x-stream-protocol-version', 'v5.channel.k8s.io',
    'content-type', 'application/apply-patch+yaml', ...added])
  t.same(upstreamRequestHeaders(['Accept', '*/*'], undefined, { ...to, clientAddress: undefined }), ['accept', '*/*', 'host', 'k8s.example.org:6443', 'x-forwarded-proto', 'http'],
    'no caller address (a Unix socket): no X-Forwarded-For')
})

t.test('upstream: credentials, claims of identity and hop-by-hop headers never pass, in any case', async (t) => {
  const dropped = [
    // the caller's credentials: the identity upstream is the client certificate
    'Authorization', 'Proxy-Authorization', 'AUTHORIZATION',
    // hop-by-hop (RFC 9110 §7.6.1), and any Proxy-*
    'Connection', 'Keep-Alive', 'TE', 'Trailer', 'Transfer-Encoding', 'Upgrade', 'Proxy-Connection', 'HTTP2-Settings', 'Proxy-Anything',
    // answered by the proxy itself
    'Expect',
    // who the caller is, as an audit log or a front proxy would read it
    'Forwarded', 'X-Forwarded-For', 'X-Forwarded-Host', 'X-Forwarded-Proto', 'X-Real-Ip', 'X-Client-Ip', 'True-Client-Ip', 'X-Cluster-Client-Ip',
    'X-Remote-User', 'X-Remote-Group', 'X-Remote-Extra-Scopes', 'X-Remote-Uid',
    'X-SSL-Client-Cert', 'Ssl-Client-Verify', 'X-Client-Cert', 'X-Client-Certificate',
    // what a gateway would read as another method or path, past --reject-methods and --reject-paths
    'X-HTTP-Method-Override', 'X-HTTP-Method', 'X-Method-Override', 'X-Original-URL', 'X-Rewrite-URL', 'X-Original-URI',
  ]
  for (const name of dropped) t.same(upstreamRequestHeaders([name, 'x', 'Accept', '*/*'], undefined, to), ['accept', '*/*', ...added], name)
  // What Connection names is hop-by-hop for this message too.
  t.same(upstreamRequestHeaders(['Connection', 'keep-alive, X-Secret', 'X-Secret', 's', 'X-Kept', 'k'], 'keep-alive, X-Secret', to), ['x-kept', 'k', ...added])
  // Lookalikes pass: only the names themselves are dropped.
  t.same(upstreamRequestHeaders(['X-Authorization-Hint', 'h', 'Impersonate-Extra-Scopes', 's'], undefined, to),
    ['x-authorization-hint', 'h', 'impersonate-extra-scopes', 's', ...added])
})

t.test('upstream, a tunnel: Upgrade passes and Connection asks for it; a bearer token sent as a WebSocket subprotocol stays here', async (t) => {
  const tunnel = { ...to, upgrade: true }
  const raw = ['Connection', 'Upgrade', 'Upgrade', 'websocket', 'Sec-WebSocket-Key', 'k==', 'Sec-WebSocket-Version', '13',
    'Sec-WebSocket-Protocol', 'base64url.bearer.authorization.k8s.io.c2VjcmV0, v5.channel.k8s.io, v4.channel.k8s.io']
  t.same(upstreamRequestHeaders(raw, 'Upgrade', tunnel), ['upgrade', 'websocket', 'sec-websocket-key', 'k==', 'sec-websocket-version', '13',
    'sec-websocket-protocol', 'v5.channel.k8s.io, v4.channel.k8s.io', 'host', 'k8s.example.org:6443', 'connection', 'Upgrade',
    'x-forwarded-for', '127.0.0.1', 'x-forwarded-proto', 'http'])
  t.same(upstreamRequestHeaders(['Sec-WebSocket-Protocol', 'Base64Url.Bearer.Authorization.K8s.Io.eA'], 'Upgrade', tunnel),
    ['host', 'k8s.example.org:6443', 'connection', 'Upgrade', 'x-forwarded-for', '127.0.0.1', 'x-forwarded-proto', 'http'],
    'a token as the only subprotocol: no header left at all')
  t.same(upstreamRequestHeaders(['Upgrade', 'websocket'], undefined, to), added, 'no tunnel: Upgrade is hop-by-hop like the rest')
})

t.test('to the client: hop-by-hop, Proxy-* and the API server\'s own CORS lines dropped; Set-Cookie lines kept apart', async (t) => {
  const raw = ['Content-Type', 'application/json', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Connection', 'keep-alive', 'Keep-Alive', 'timeout=5',
    'Transfer-Encoding', 'chunked', 'Proxy-Authenticate', 'Basic', 'Access-Control-Allow-Origin', '*', 'Access-Control-Allow-Credentials', 'true',
    'Audit-Id', '42']
  t.same(clientResponseHeaders(raw), ['content-type', 'application/json', 'set-cookie', 'a=1', 'set-cookie', 'b=2', 'audit-id', '42'])
  t.same(clientResponseHeaders(['Connection', 'close, X-Hop', 'X-Hop', 'h', 'X-End', 'e']), ['x-end', 'e'], 'what Connection names is dropped too')
  t.same(clientResponseHeaders([Buffer.from('X-Name'), Buffer.from([0x63, 0x61, 0x66, 0xe9])]), ['x-name', 'caf\u00e9'], 'undici\'s raw bytes read as latin1, as node:http reads them')
})

t.test('a request announces a body by a length above zero or a transfer coding', async (t) => {
  const cases: Array<[Record<string, string>, boolean]> = [
    [{}, false],
    [{ 'content-length': '0' }, false],
    [{ 'content-length': '5' }, true],
    [{ 'transfer-encoding': 'chunked' }, true],
    [{ 'content-length': '0', 'transfer-encoding': 'chunked' }, true],
  ]
  for (const [headers, body] of cases) t.equal(declaresBody(headers), body, JSON.stringify(headers))
})
