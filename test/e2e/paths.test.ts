// kubectl proxy's path and method filters, judged on the path the API server will act on, over a
// real listener (the normalisation itself: test/unit/admission/target.test.ts).
import t from 'tap'
import { pkiWithFiles } from '../helpers/pki.js'
import { echoHandler, startUpstream } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'
import { rawRequest, statusLine } from '../helpers/http.js'
import { startTunnelUpstream } from '../helpers/tunnel-upstream.js'

const { pki, files } = await pkiWithFiles(t)

t.test('--reject-paths cannot be dodged by encoding, dot segments, doubled slashes or case', async (t) => {
  const upstream = await startUpstream(t, pki, echoHandler)
  const proxy = await startProxy(t, upstream.url, files, ['--reject-paths', '^/api/.*/pods/.*/exec,^/api/.*/pods/.*/attach'])
  const dodges = [
    '/api/v1/namespaces/default/pods/web/exec?command=sh',
    '/api/v1/namespaces/default/pods/web/%65xec?command=sh',
    '/api/v1/namespaces/default/pods/web/EXEC?command=sh',
    '/api/v1/namespaces/default/pods/web/x/../exec?command=sh',
    '/api/v1/namespaces/default/pods/web/x/%2e%2e/exec?command=sh',
    '//api/v1/namespaces/default/pods/web//exec?command=sh',
    '/api/v1/namespaces/default/pods/web/./exec?command=sh',
    '/api/v1/namespaces%2fdefault%2fpods%2fweb%2fexec?command=sh',
    '/api/v1/namespaces/default/pods/web/attach',
    `http://localhost:${proxy.port}/api/v1/namespaces/default/pods/web/exec`,
  ]
  for (const target of dodges) {
    const before = upstream.calls().length
    const answer = await rawRequest(proxy.port, `POST ${target} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`)
    t.equal(statusLine(answer), 403, target)
    t.match(answer, /is refused by --reject-paths/)
    t.equal(upstream.calls().length, before, `${target}: not forwarded`)
  }
  const ok = await rawRequest(proxy.port, 'GET /api/v1/namespaces/default/pods/web/log HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
  t.equal(statusLine(ok), 200, 'other paths pass')
  const weird = await rawRequest(proxy.port, 'GET //api/./v1/pods HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
  t.equal(statusLine(weird), 200)
  t.equal(upstream.calls().at(-1)?.url, '/api/v1/pods', 'the upstream gets the normalised path that was judged')
  const bad = await rawRequest(proxy.port, 'GET /api/%zz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
  t.equal(statusLine(bad), 400)
  t.equal((await rawRequest(proxy.port, 'GET /-/healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')).split('\r\n\r\n')[1], 'ok', 'own endpoints are not subject to path rules')
})

t.test('--reject-paths blocks exec upgrades too', async (t) => {
  const { upstream, upgrades } = await startTunnelUpstream(t, pki)
  const proxy = await startProxy(t, upstream.url, files, ['--reject-paths', '^/api/.*/pods/.*/(exec|attach|portforward)'])
  const answer = await rawRequest(proxy.port, ['GET /api/v1/namespaces/default/pods/web/%65xec?command=sh HTTP/1.1', 'Host: localhost', 'Connection: Upgrade', 'Upgrade: websocket', '', ''].join('\r\n'))
  t.equal(statusLine(answer), 403)
  t.match(answer, /refused by --reject-paths/)
  t.equal(upgrades.length, 0)
})

t.test('--accept-paths and --reject-methods (read-only use)', async (t) => {
  const upstream = await startUpstream(t, pki, echoHandler)
  const proxy = await startProxy(t, upstream.url, files, ['--accept-paths', '^/api/,^/apis/,^/version$', '--reject-methods', 'POST,PUT,PATCH,DELETE'])
  const req = (line: string) => rawRequest(proxy.port, `${line} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`)
  t.equal(statusLine(await req('GET /api/v1/pods')), 200)
  t.equal(statusLine(await req('GET /version')), 200)
  const outside = await req('GET /openapi/v2')
  t.equal(statusLine(outside), 403)
  t.match(outside, /is not accepted by --accept-paths/)
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'delete']) {
    const answer = await req(`${method} /api/v1/namespaces/default/pods/x`)
    // Node's strict parser refuses a lower-case method before any rule runs.
    t.equal(statusLine(answer), method === 'delete' ? 400 : 405, method)
  }
  t.match(await req('DELETE /api/v1/pods/x'), /method DELETE is refused by --reject-methods DELETE/)
  t.equal(upstream.calls().filter((c) => c.method !== 'GET').length, 0, 'no write reached the upstream')
})

t.test('--accept-hosts replaces the Host allowlist, kubectl-style', async (t) => {
  const upstream = await startUpstream(t, pki, echoHandler)
  const proxy = await startProxy(t, upstream.url, files, ['--accept-hosts', '^localhost$,^mtls-proxy\\.local$'])
  const req = (host: string) => rawRequest(proxy.port, `GET /api HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
  t.equal(statusLine(await req('mtls-proxy.local:8001')), 200)
  t.equal(statusLine(await req('localhost')), 200)
  t.equal(statusLine(await req('127.0.0.1')), 200, 'the listen address stays accepted')
  t.equal(statusLine(await req('evil.example')), 403)
})
