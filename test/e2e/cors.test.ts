// CORS for the web apps listed with --allow-origin: their preflights answered by the proxy and never
// forwarded, their answers readable (Access-Control-Allow-Origin naming them, Vary: Origin, the
// headers clients read exposed), credentials mode never allowed; every other origin refused as before.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { stringify } from 'yaml'
import { pkiWithFiles } from '../helpers/pki.js'
import { startProxy } from '../helpers/proxy.js'
import { get, rawRequest, statusLine } from '../helpers/http.js'
import { startTunnelUpstream } from '../helpers/tunnel-upstream.js'

const { pki, files } = await pkiWithFiles(t)
const APP = 'http://localhost:3000'
const PODS = '/api/v1/namespaces/default/pods'

// An API server with CORS of its own (kube-apiserver --cors-allowed-origins): the proxy's must stand.
const { upstream, upgrades } = await startTunnelUpstream(t, pki, (req, res) => {
  res.writeHead(200, {
    'content-type': 'application/json', 'access-control-allow-origin': '*', vary: 'Accept-Encoding', 'audit-id': 'a-1', warning: '299 - "deprecated"',
  })
  res.end(JSON.stringify({ method: req.method, url: req.url }))
})

const browser = (origin: string, extra: Record<string, string> = {}) => ({ origin, 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'cors', ...extra })

t.test('a listed origin\'s preflight is answered 204 by the proxy, never forwarded', async (t) => {
  const proxy = await startProxy(t, upstream.url, files, ['--allow-origin', APP])
  const before = upstream.calls().length
  const res = await get(`${proxy.url}${PODS}`, {
    method: 'OPTIONS',
    headers: browser(APP, { 'access-control-request-method': 'DELETE', 'access-control-request-headers': 'content-type, impersonate-user, authorization' }),
  })
  t.equal(res.status, 204)
  t.equal(res.headers['access-control-allow-origin'], APP, 'the origin itself, never *')
  t.match(res.headers['access-control-allow-methods'], /DELETE/)
  t.match(res.headers['access-control-allow-methods'], /PATCH/)
  t.equal(res.headers['access-control-allow-headers'], 'content-type, impersonate-user, authorization', 'the requested headers, echoed')
  t.match(res.headers.vary, /Origin/)
  t.notOk(res.headers['access-control-allow-credentials'], 'credentials mode is never allowed')
  t.equal(upstream.calls().length, before, 'the upstream never saw it')

  const other = await get(`${proxy.url}${PODS}`, { method: 'OPTIONS', headers: browser('https://evil.example', { 'access-control-request-method': 'GET' }) })
  t.equal(other.status, 403)
  t.match(other.json(), { kind: 'Status', code: 403, message: /requests from web pages are refused \(Origin: https:\/\/evil\.example\)/ })
  t.notOk(other.headers['access-control-allow-origin'], 'another origin gets no CORS header')
  const trace = await get(`${proxy.url}${PODS}`, { method: 'OPTIONS', headers: browser(APP, { 'access-control-request-method': 'TRACE' }) })
  t.equal(trace.status, 405, 'a method the proxy does not forward')
  t.equal(upstream.calls().length, before, 'refused preflights are not forwarded either')
})

t.test('a listed origin\'s answers are readable; others are refused as before; no Origin, no CORS', async (t) => {
  const proxy = await startProxy(t, upstream.url, files, ['--allow-origin', `${APP},https://dash.example:8443`, '--reject-methods', 'DELETE'])
  const res = await get(`${proxy.url}${PODS}`, { headers: browser(APP) })
  t.equal(res.status, 200)
  t.equal(res.headers['access-control-allow-origin'], APP, 'the API server\'s own * is replaced by the origin')
  t.match(res.headers['access-control-expose-headers'], /Warning/)
  t.match(res.headers['access-control-expose-headers'], /Audit-Id/)
  t.match(res.headers.vary, /Accept-Encoding/, 'the API server\'s Vary kept')
  t.match(res.headers.vary, /Origin/, 'and Origin added')
  t.notOk(res.headers['access-control-allow-credentials'])

  const refused = await get(`${proxy.url}${PODS}`, { method: 'DELETE', headers: browser(APP) })
  t.equal(refused.status, 405)
  t.equal(refused.headers['access-control-allow-origin'], APP, 'a refusal to a listed origin is readable too')
  const preflight = await get(`${proxy.url}${PODS}`, { method: 'OPTIONS', headers: browser(APP, { 'access-control-request-method': 'DELETE' }) })
  t.equal(preflight.status, 405, 'and so is a preflight for a method --reject-methods refuses')
  const own = await get(`${proxy.url}/-/status`, { headers: browser('https://dash.example:8443') })
  t.equal(own.headers['access-control-allow-origin'], 'https://dash.example:8443', 'the proxy\'s own endpoints too')

  const other = await get(`${proxy.url}${PODS}`, { headers: browser('https://evil.example') })
  t.equal(other.status, 403)
  t.notOk(other.headers['access-control-allow-origin'])
  const plain = await get(`${proxy.url}${PODS}`)
  t.equal(plain.status, 200)
  t.notOk(plain.headers['access-control-allow-origin'], 'the API server\'s own CORS lines never pass: which pages may read is the proxy\'s call')
})

t.test('the proxy\'s own 502 for an unreachable API server is readable by a listed origin', async (t) => {
  const proxy = await startProxy(t, 'https://127.0.0.1:9', files, ['--allow-origin', APP, '--connect-timeout', '2s'])
  const res = await get(`${proxy.url}${PODS}`, { headers: browser(APP) })
  t.equal(res.status, 502)
  t.equal(res.headers['access-control-allow-origin'], APP)
  t.match(res.headers.vary, /Origin/)
})

t.test('with --token-file: the preflight needs no token, the request does, and its 401 is readable', async (t) => {
  const tokenFile = join(files.dir, 'callers.token')
  await writeFile(tokenFile, 'a-token-of-at-least-16-characters\n', { mode: 0o600 })
  const proxy = await startProxy(t, upstream.url, files, ['--allow-origin', APP, '--token-file', tokenFile])
  const preflight = await get(`${proxy.url}${PODS}`, {
    method: 'OPTIONS', headers: browser(APP, { 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' }),
  })
  t.equal(preflight.status, 204)
  t.equal(preflight.headers['access-control-allow-headers'], 'authorization', 'Authorization named, as * would not cover it')
  const missing = await get(`${proxy.url}${PODS}`, { headers: browser(APP) })
  t.equal(missing.status, 401)
  t.equal(missing.headers['access-control-allow-origin'], APP)
  const ok = await get(`${proxy.url}${PODS}`, { headers: browser(APP, { authorization: 'Bearer a-token-of-at-least-16-characters' }) })
  t.equal(ok.status, 200)
})

t.test('with --token-file and several clusters: no answer to a caller without the token names a cluster, a preflight\'s neither', async (t) => {
  const tokenFile = join(files.dir, 'callers.token')
  await writeFile(tokenFile, 'a-token-of-at-least-16-characters\n', { mode: 0o600 })
  const config = join(files.dir, 'clusters.yaml')
  await writeFile(config, stringify({ clusters: [{ name: 'payroll-prod', upstream: upstream.url, cacert: files.cacert, cert: files.cert, key: files.key }] }))
  const proxy = await startProxy(t, upstream.url, files, ['--allow-origin', APP, '--token-file', tokenFile, '--config', config])
  const ask = (path: string, headers: Record<string, string>, method = 'GET') => get(`${proxy.url}${path}`, { method, headers })
  const preflight = browser(APP, { 'access-control-request-method': 'GET' })
  const unknown = await ask(`/clusters/nope${PODS}`, preflight, 'OPTIONS')
  t.equal(unknown.status, 404, 'a preflight for a name no cluster has')
  t.notMatch(unknown.body, /payroll-prod|'default'/, 'names none of the clusters served')
  t.equal((await ask(`/clusters/payroll-prod${PODS}`, preflight, 'OPTIONS')).status, 204, 'one that is served is answered as before')
  for (const path of [`/clusters/nope${PODS}`, `/clusters/payroll-prod${PODS}`, '/-/readyz?cluster=nope', '/-/status']) {
    const answer = await ask(path, browser(APP))
    t.equal(answer.status, 401, `${path} without the token: 401`)
    t.notMatch(answer.body, /payroll-prod/, 'naming no cluster')
  }
  const listed = await ask(`/clusters/nope${PODS}`, browser(APP, { authorization: 'Bearer a-token-of-at-least-16-characters' }))
  t.match(listed.body, /it serves 'default', 'payroll-prod'/, 'with the token, the names are told')
})

t.test('a listed origin may open a WebSocket exec; another may not', async (t) => {
  const proxy = await startProxy(t, upstream.url, files, ['--allow-origin', APP])
  const exec = (origin: string) => rawRequest(proxy.port, [
    `GET ${PODS}/web/exec?command=sh&stdin=true HTTP/1.1`, `Host: 127.0.0.1:${proxy.port}`, `Origin: ${origin}`, 'Sec-Fetch-Site: cross-site',
    'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Protocol: v5.channel.k8s.io', '', ''].join('\r\n'), 1_000)
  const seen = upgrades.length
  t.equal(statusLine(await exec(APP)), 101, 'the listed origin\'s page opens it')
  t.equal(upgrades.length, seen + 1)
  t.equal(statusLine(await exec('https://evil.example')), 403, 'another origin\'s page is refused')
  t.equal(upgrades.length, seen + 1)
})
