// The guard, table-driven: hostile requests as raw bytes (an HTTP client would tidy them up),
// each with the status it must get and the promise that the upstream never saw it. Every row goes
// through both doors: as written, and as a `Connection: Upgrade` request (which Node hands past
// Fastify, to the tunnels). Then the legitimate twins that must pass.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import WebSocket from 'ws'
import { pkiWithFiles } from '../helpers/pki.js'
import { startProxy } from '../helpers/proxy.js'
import { rawRequest, statusLine } from '../helpers/http.js'
import { startTunnelUpstream } from '../helpers/tunnel-upstream.js'

const TOKEN = 'b6f1c0a3e2d94f7a8c1e5d2b9a7f3c4e'
const { pki, files } = await pkiWithFiles(t)
const tokenFile = join(files.dir, 'token')
await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 })
const { upstream, upgrades } = await startTunnelUpstream(t, pki)
const proxy = await startProxy(t, upstream.url, files, ['--token-file', tokenFile, '--reject-paths', '^/api/v1/namespaces/kube-system/secrets,^/api/.*/pods/.*/exec$'])
const auth = `Authorization: Bearer ${TOKEN}`
const H = `Host: 127.0.0.1:${proxy.port}`
const req = (head: string, headers: string[], body = '') => `${head}\r\n${[...headers, 'Connection: close'].join('\r\n')}\r\n\r\n${body}`
const get = (target: string, ...headers: string[]) => req(`GET ${target} HTTP/1.1`, [H, auth, ...headers])

// [name, raw request, expected status, expected status through the upgrade door when it differs]
const hostile: Array<[string, string, number, number?]> = [
  // DNS rebinding: the browser sends the attacker's name as Host
  ['foreign Host', req('GET /api/v1/secrets HTTP/1.1', ['Host: evil.example', auth]), 403],
  ['foreign Host with port', req('GET /api/v1/secrets HTTP/1.1', ['Host: evil.example:8001', auth]), 403],
  ['rebinding name ending in 127.0.0.1', req('GET /api HTTP/1.1', ['Host: 127.0.0.1.nip.io', auth]), 403],
  ['localhost as a subdomain', req('GET /api HTTP/1.1', ['Host: localhost.evil.example', auth]), 403],
  ['Host with userinfo', req('GET /api HTTP/1.1', ['Host: localhost@evil.example', auth]), 403],
  ['two Host headers', req('GET /api HTTP/1.1', ['Host: localhost', 'Host: evil.example', auth]), 400],
  ['empty Host', req('GET /api HTTP/1.1', ['Host: ', auth]), 403],
  ['private address as Host', req('GET /api HTTP/1.1', ['Host: 192.168.0.18:5443', auth]), 403],
  // a web page in the user's browser
  ['XSRF with Origin', get('/api/v1/namespaces/default/pods', 'Origin: https://evil.example'), 403],
  ['Origin null', get('/api/v1/namespaces/default/pods', 'Origin: null'), 403],
  ['local dev server page', get('/api/v1/namespaces/default/pods', 'Origin: http://localhost:3000'), 403],
  ['a page of this host on another port', get('/api/v1/namespaces/default/pods', 'Origin: http://127.0.0.1:1'), 403],
  ['a page naming this port over https', get('/api/v1/namespaces/default/pods', `Origin: https://127.0.0.1:${proxy.port}`), 403],
  ['a page naming this port under another name', get('/api/v1/namespaces/default/pods', `Origin: http://localhost:${proxy.port}`), 403],
  // A page the proxy itself serves (a service's /proxy/ passed through) has the proxy's own origin: its script must not write.
  ['a page served through the proxy, writing', req('POST /api/v1/namespaces/default/pods HTTP/1.1', [H, auth, `Origin: http://127.0.0.1:${proxy.port}`, 'Sec-Fetch-Site: same-origin', 'Content-Length: 2'], '{}'), 403],
  ['a page served through the proxy, exec', get('/api/v1/namespaces/default/pods/web/attach', `Origin: http://127.0.0.1:${proxy.port}`, 'Sec-Fetch-Site: same-origin'), 403],
  ['cross-site navigation', get('/api/v1/namespaces/default/pods', 'Sec-Fetch-Site: cross-site'), 403],
  ['same-site request', get('/api/v1/namespaces/default/pods', 'Sec-Fetch-Site: same-site'), 403],
  ['form POST from a page', req('POST /api/v1/namespaces/default/pods HTTP/1.1', [H, auth, 'Origin: https://evil.example', 'Content-Type: application/x-www-form-urlencoded', 'Content-Length: 3'], 'a=b'), 403],
  ['exec from a page', get('/api/v1/namespaces/default/pods/web/attach?stdin=1', 'Origin: https://evil.example'), 403],
  // other local users: no or wrong token
  ['no token', req('GET /api/v1/secrets HTTP/1.1', [H]), 401],
  ['wrong token', req('GET /api/v1/secrets HTTP/1.1', [H, 'Authorization: Bearer wrong-token-000000000000000']), 401],
  ['token prefix', req('GET /api/v1/secrets HTTP/1.1', [H, `Authorization: Bearer ${TOKEN.slice(0, 16)}`]), 401],
  ['token as Basic', req('GET /api/v1/secrets HTTP/1.1', [H, `Authorization: Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`]), 401],
  ['token in Proxy-Authorization', req('GET /api/v1/secrets HTTP/1.1', [H, `Proxy-Authorization: Bearer ${TOKEN}`]), 401],
  ['attach without token', req('GET /api/v1/namespaces/default/pods/web/attach HTTP/1.1', [H]), 401],
  ['a token only in the WebSocket subprotocol', req('GET /api/v1/namespaces/default/pods/web/attach HTTP/1.1', [H, `Sec-WebSocket-Protocol: base64url.bearer.authorization.k8s.io.${Buffer.from(TOKEN).toString('base64url')}`]), 401],
  // the proxy's own endpoints are answered here, never forwarded, whatever the method
  ['POST to /-/readyz and Impersonate-User', req('POST /-/readyz HTTP/1.1', [H, 'Impersonate-User: system:admin', 'Content-Length: 2'], '{}'), 405],
  // with a query (?cluster=NAME names clusters), the token is needed as for /-/status
  ['/-/readyz with a query, no token', req('GET /-/readyz?cluster=x HTTP/1.1', [H]), 401],
  ['PATCH /-/healthz', req('PATCH /-/healthz HTTP/1.1', [H, 'Content-Length: 0']), 405],
  ['DELETE /-/status with the token', req('DELETE /-/status HTTP/1.1', [H, auth]), 405],
  ['/-/status without the token', req('GET /-/status HTTP/1.1', [H]), 401],
  ['/-/metrics without the token', req('GET /-/metrics HTTP/1.1', [H]), 401],
  ['an unknown own endpoint', get('/-/debug/pprof'), 404, 400],
  ['an own endpoint, dot segments', get('/api/../-/nope'), 404, 400],
  // an open proxy
  ['absolute-form to another host', req('GET http://evil.example/ HTTP/1.1', ['Host: evil.example', auth]), 403],
  ['absolute-form to another host, loopback Host', req('GET http://169.254.169.254/latest/meta-data HTTP/1.1', [H, auth]), 403],
  ['absolute-form https', req(`GET https://127.0.0.1:${proxy.port}/api HTTP/1.1`, [H, auth]), 403],
  ['absolute-form to another port of this host', req(`GET http://127.0.0.1:${upstream.port}/api/v1/secrets HTTP/1.1`, [H, auth]), 403],
  ['absolute-form without a port (80, not ours)', req('GET http://127.0.0.1/api/v1/secrets HTTP/1.1', [H, auth]), 403],
  ['HTTP/1.0 without Host', `GET /api/v1/secrets HTTP/1.0\r\n${auth}\r\n\r\n`, 400],
  ['CONNECT tunnel', req('CONNECT evil.example:443 HTTP/1.1', ['Host: evil.example:443', auth]), 405],
  ['CONNECT to the upstream', req(`CONNECT 127.0.0.1:${upstream.port} HTTP/1.1`, [H, auth]), 405],
  ['asterisk-form', req('OPTIONS * HTTP/1.1', [H, auth]), 403],
  ['TRACE', req('TRACE /api HTTP/1.1', [H, auth]), 405],
  ['PROPFIND', req('PROPFIND /api HTTP/1.1', [H, auth]), 405],
  ['an unknown method', req('FROB /api HTTP/1.1', [H, auth]), 400],
  // filters that could be dodged
  ['rejected path', get('/api/v1/namespaces/kube-system/secrets'), 403],
  ['rejected path, encoded', get('/api/v1/namespaces/kube-system/%73ecrets'), 403],
  ['rejected path, dot segments', get('/api/v1/namespaces/default/../kube-system/secrets'), 403],
  ['rejected path, encoded dots', get('/api/v1/namespaces/default/%2e%2e/kube-system/secrets'), 403],
  ['rejected path, double slashes', get('/api/v1//namespaces//kube-system/secrets'), 403],
  ['rejected path, encoded slash', get('/api/v1/namespaces%2Fkube-system%2Fsecrets'), 403],
  ['rejected path, upper case', get('/API/V1/NAMESPACES/KUBE-SYSTEM/SECRETS'), 403],
  ['rejected path, backslashes', get('/api\\v1\\namespaces\\kube-system\\secrets'), 403],
  ['an $-anchored rejected path', get('/api/v1/namespaces/default/pods/pod-a/exec?command=hostname'), 403],
  ['an $-anchored rejected path dodged with a raw #', get('/api/v1/namespaces/default/pods/pod-a/exec#?command=hostname'), 400],
  ['a raw # after the query', get('/api/v1/namespaces/default/pods/pod-a/exec?command=ls#x'), 400],
  ['path above the root', get('/../../etc/passwd'), 400],
  ['malformed percent-encoding', get('/api/%zz'), 400],
  ['NUL in the path', get('/api/v1/pods%00x'), 400],
  // malformed and oversized HTTP, smuggling
  ['Content-Length and Transfer-Encoding together', req('POST /api/v1/namespaces/default/pods HTTP/1.1', [H, auth, 'Content-Length: 4', 'Transfer-Encoding: chunked'], '0\r\n\r\n'), 400],
  ['two different Content-Lengths', req('POST /api/v1/namespaces/default/pods HTTP/1.1', [H, auth, 'Content-Length: 4', 'Content-Length: 5'], 'abcd'), 400],
  ['obfuscated Transfer-Encoding', req('POST /api/v1/namespaces/default/pods HTTP/1.1', [H, auth, 'Transfer-Encoding: xchunked'], ''), 400],
  ['space before the colon', req('GET /api HTTP/1.1', [H, auth, 'X-Foo : bar']), 400],
  ['bare LF line endings', `GET /api HTTP/1.1\n${H}\n${auth}\n\n`, 400],
  ['header too large', get('/api', `X-Big: ${'a'.repeat(20_000)}`), 431],
  ['too many header fields', get('/api', ...Array.from({ length: 150 }, (_, i) => `X-H${i}: v`)), 431],
  ['too many header lines of one name', get('/api', ...Array.from({ length: 150 }, () => 'X-Dup: v')), 431],
  ['invalid method', req('G@T /api HTTP/1.1', [H, auth]), 400],
  ['HTTP/2 preface on HTTP/1', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 400],
]

/** The same request as a WebSocket upgrade: the headers that ask for it go right after the request line. */
function viaUpgrade (raw: string): string {
  const eol = raw.includes('\r\n') ? '\r\n' : '\n'
  const at = raw.indexOf(eol)
  const upgrade = ['Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='].join(eol)
  return `${raw.slice(0, at)}${eol}${upgrade}${raw.slice(at).replace(`${eol}Connection: close`, '')}`
}

const forwarded = () => upstream.calls().length + upgrades.length

for (const door of ['request', 'upgrade'] as const) {
  t.test(`${hostile.length} hostile requests through the ${door} door: refused with the right status, never seen upstream`, async (t) => {
    t.ok(hostile.length >= 60)
    for (const [name, raw, status, upgradeStatus] of hostile) {
      const expected = door === 'upgrade' ? upgradeStatus ?? status : status
      const before = forwarded()
      const answer = await rawRequest(proxy.port, door === 'upgrade' ? viaUpgrade(raw) : raw)
      t.equal(statusLine(answer), expected, `${name}: ${expected}`)
      if (expected !== 400 || answer.includes('{')) t.match(answer, /"kind":"Status"|^HTTP\/1\.1 4\d\d/, `${name}: an answer a client can read`)
      t.equal(forwarded(), before, `${name}: never reached the upstream`)
    }
  })
}

t.test('the legitimate twins pass', async (t) => {
  const ok = async (name: string, raw: string, status = 200) => {
    const answer = await rawRequest(proxy.port, raw)
    t.equal(statusLine(answer), status, name)
  }
  await ok('curl-like', get('/api/v1/namespaces/default/pods', 'User-Agent: curl/8.5.0', 'Accept: */*'))
  await ok('kubectl-like', get('/api/v1/namespaces/default/pods?limit=500', 'User-Agent: kubectl/v1.32.0 (linux/amd64) kubernetes/abc', 'Accept: application/json;as=Table;v=v1;g=meta.k8s.io,application/json'))
  await ok('--as impersonation', get('/api/v1/namespaces/default/pods', 'Impersonate-User: jane', 'Impersonate-Group: devs'))
  t.equal(upstream.calls().at(-1)?.headers['impersonate-user'], 'jane')
  t.equal(upstream.calls().at(-1)?.headers.authorization, undefined, 'the token is not forwarded')
  await ok('a watch', get('/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=1'))
  await ok('a POST with a body', req('POST /api/v1/namespaces/default/configmaps HTTP/1.1', [H, auth, 'Content-Type: application/json', 'Content-Length: 2'], '{}'))
  await ok('HTTP/1.0 with Host', `GET /version HTTP/1.0\r\n${H}\r\n${auth}\r\n\r\n`)
  await ok('absolute-form to the proxy itself', req(`GET http://127.0.0.1:${proxy.port}/api HTTP/1.1`, [H, auth]))
  await ok('a probe without token', req('GET /-/readyz HTTP/1.1', [H]), 200)
  await ok('an Origin naming the proxy itself (what WebSocket libraries send)', get('/api/v1/namespaces/default/pods', `Origin: http://127.0.0.1:${proxy.port}`))
  const ws = new WebSocket(`ws://127.0.0.1:${proxy.port}/api/v1/namespaces/default/pods/web/attach?stdin=1`, ['v5.channel.k8s.io'], { headers: { authorization: `Bearer ${TOKEN}` } })
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  t.equal(ws.protocol, 'v5.channel.k8s.io', 'an attach upgrade with the token')
  ws.close()
})
