// Who may use the proxy (first layer): loopback Host names only, no forward-proxy use.
import t from 'tap'
import { pkiWithFiles } from '../helpers/pki.js'
import { echoHandler, startUpstream } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'
import { get, rawRequest, statusLine } from '../helpers/http.js'

const { pki, files } = await pkiWithFiles(t)
const upstream = await startUpstream(t, pki, echoHandler)
const proxy = await startProxy(t, upstream.url, files)
t.teardown(() => proxy.app.close())

function request (target: string, headers: string[]): Promise<string> {
  return rawRequest(proxy.port, [`GET ${target} HTTP/1.1`, ...headers, 'Connection: close', '', ''].join('\r\n'))
}

t.test('Host names of this machine pass, with or without port', async (t) => {
  for (const host of ['localhost', `localhost:${proxy.port}`, '127.0.0.1', `127.0.0.1:${proxy.port}`, '[::1]', `[::1]:${proxy.port}`, 'LOCALHOST:1']) {
    const before = upstream.calls().length
    const answer = await request('/api/v1/pods', [`Host: ${host}`])
    t.equal(statusLine(answer), 200, `Host: ${host}`)
    t.equal(upstream.calls().length, before + 1, `${host} forwarded`)
  }
})

t.test('any other Host gets 403 and never reaches the upstream', async (t) => {
  const hostile = ['evil.example', 'evil.example:8001', '127.0.0.1.nip.io', 'localhost.evil.example', '192.168.0.18:5443',
    '[::2]:8001', 'localhost:8001@evil', '127.0.0.2', '', 'local host', '0.0.0.0']
  for (const host of hostile) {
    const before = upstream.calls().length
    const answer = await request('/api/v1/secrets', [`Host: ${host}`])
    t.equal(statusLine(answer), 403, `Host: '${host}' refused`)
    t.match(answer, /"kind":"Status"/)
    t.match(answer, /"code":403/)
    t.equal(upstream.calls().length, before, `'${host}' not forwarded`)
  }
  const res = await get(`${proxy.url}/api/v1/secrets`, { headers: { host: 'attacker.example' } })
  t.equal(res.status, 403)
  t.equal(res.json().reason, 'Forbidden')
  t.match(res.json().message, /Host 'attacker\.example' is not accepted/)
})

t.test('absolute-form targets to other hosts and CONNECT are never forwarded anywhere', async (t) => {
  const before = upstream.calls().length
  const other = await request('http://evil.example/api/v1/secrets', ['Host: evil.example'])
  t.equal(statusLine(other), 403)
  t.match(other, /not an open proxy/)
  const sneaky = await request('http://evil.example/api/v1/secrets', [`Host: localhost:${proxy.port}`])
  t.equal(statusLine(sneaky), 403, 'absolute-form to another host, even with a loopback Host')
  const https = await request(`https://localhost:${proxy.port}/api`, [`Host: localhost:${proxy.port}`])
  t.equal(statusLine(https), 403, 'https absolute-form refused')
  const connect = await rawRequest(proxy.port, 'CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n')
  t.equal(statusLine(connect), 405)
  t.match(connect, /CONNECT is refused/)
  const trace = await rawRequest(proxy.port, 'TRACE /api HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
  t.equal(statusLine(trace), 405)
  t.equal(upstream.calls().length, before, 'nothing reached the upstream')
  const own = await request(`http://localhost:${proxy.port}/api/v1/pods?x=1`, [`Host: localhost:${proxy.port}`])
  t.equal(statusLine(own), 200, 'absolute-form naming the proxy itself is served')
  t.equal(upstream.calls().at(-1)?.url, '/api/v1/pods?x=1')
})

t.test('an HTTP/1.0 request without Host is refused: no name, no Host check', async (t) => {
  const before = upstream.calls().length
  const answer = await rawRequest(proxy.port, 'GET /version HTTP/1.0\r\n\r\n')
  t.equal(statusLine(answer), 400)
  t.match(answer, /a Host header is required/)
  t.equal(statusLine(await rawRequest(proxy.port, 'GET /version HTTP/1.0\r\nHost: localhost\r\n\r\n')), 200, 'with a Host it is served')
  t.equal(upstream.calls().length, before + 1)
})

t.test('absolute-form naming this host but another port (a client using us as its HTTP proxy) is refused', async (t) => {
  const before = upstream.calls().length
  for (const target of [`http://127.0.0.1:${proxy.port + 1}/api/v1/pods`, 'http://127.0.0.1/api/v1/pods', `http://localhost:${proxy.port}0/api`]) {
    const answer = await request(target, [`Host: 127.0.0.1:${proxy.port}`])
    t.equal(statusLine(answer), 403, target)
    t.match(answer, /not an open proxy/)
  }
  t.equal(upstream.calls().length, before, 'nothing forwarded')
})

t.test('a web page cannot use the proxy: Origin or Sec-Fetch-Site cross-site/same-site refused', async (t) => {
  const hostile: Array<[string, string[]]> = [
    ['foreign Origin', ['Origin: https://evil.example']],
    ['Origin null (sandboxed frame, file://)', ['Origin: null']],
    ['localhost page on another port', ['Origin: http://localhost:3000']],
    ['cross-site navigation', ['Sec-Fetch-Site: cross-site', 'Sec-Fetch-Mode: navigate']],
    ['same-site subresource', ['Sec-Fetch-Site: same-site']],
  ]
  for (const [name, headers] of hostile) {
    const before = upstream.calls().length
    const answer = await request('/api/v1/namespaces/default/secrets', [`Host: 127.0.0.1:${proxy.port}`, ...headers])
    t.equal(statusLine(answer), 403, name)
    t.match(answer, /requests from web pages are refused/, `${name}: says why`)
    t.equal(upstream.calls().length, before, `${name}: not forwarded`)
  }
  const hint = await get(`${proxy.url}/api/v1/pods`, { headers: { origin: 'http://localhost:3000' } })
  t.match(hint.json().message, /start it with --allow-origin http:\/\/localhost:3000/)
  for (const site of ['none', 'same-origin']) {
    const answer = await request('/api/v1/pods', [`Host: 127.0.0.1:${proxy.port}`, `Sec-Fetch-Site: ${site}`])
    t.equal(statusLine(answer), 200, `Sec-Fetch-Site: ${site} passes (typed in the address bar, or the proxy's own page)`)
  }
})

t.test('--allow-origin lets exactly the named origins in', async (t) => {
  const open = await startProxy(t, upstream.url, files, ['--allow-origin', 'http://localhost:3000, https://dash.example:8443'])
  t.equal((await get(`${open.url}/api/v1/pods`, { headers: { origin: 'http://localhost:3000' } })).status, 200)
  t.equal((await get(`${open.url}/api/v1/pods`, { headers: { origin: 'https://dash.example:8443', 'sec-fetch-site': 'cross-site' } })).status, 200)
  t.equal((await get(`${open.url}/api/v1/pods`, { headers: { origin: 'http://localhost:3001' } })).status, 403)
  t.equal((await get(`${open.url}/api/v1/pods`, { headers: { origin: 'https://dash.example' } })).status, 403, 'the port is part of the origin')
})
