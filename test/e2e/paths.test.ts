// kubectl proxy's path and method filters, judged on the path the API server will act on.
import t from 'tap'
import { pkiWithFiles } from '../helpers/pki.js'
import { echoHandler, startUpstream } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'
import { rawRequest, statusLine } from '../helpers/http.js'
import { startTunnelUpstream } from '../helpers/tunnel-upstream.js'
import { clusterNameProblem, normalizeTarget, splitClusterPrefix } from '../../src/admission/target.js'

t.test('normalisation: decoded, dot and empty segments resolved, re-encoded for the upstream', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['/api/v1/pods?watch=1', '/api/v1/pods', '/api/v1/pods?watch=1'],
    ['/api/v1/namespaces/default/pods/x/%65xec', '/api/v1/namespaces/default/pods/x/exec', '/api/v1/namespaces/default/pods/x/exec'],
    ['/api/v1/namespaces/default/pods/x/foo/%2e%2e/exec?c=1', '/api/v1/namespaces/default/pods/x/exec', '/api/v1/namespaces/default/pods/x/exec?c=1'],
    ['//api//v1/./pods/', '/api/v1/pods/', '/api/v1/pods/'],
    ['/api/v1/namespaces%2fdefault/pods', '/api/v1/namespaces/default/pods', '/api/v1/namespaces/default/pods'],
    ['/api/v1/namespaces/a%20b', '/api/v1/namespaces/a b', '/api/v1/namespaces/a%20b'],
    ['/api\\v1\\pods', '/api/v1/pods', '/api/v1/pods'],
  ]
  for (const [target, path, forward] of cases) t.same(normalizeTarget(target), { ok: true, path, forward }, target)
  t.match(normalizeTarget('/%zz'), { ok: false, message: /malformed percent-encoding/ })
  t.match(normalizeTarget('/../etc'), { ok: false, message: /climbs above the root/ })
  t.match(normalizeTarget('/a%00b'), { ok: false, message: /control characters/ })
})

t.test('the cluster prefix: the longest served name at a segment boundary, however the client escaped it', async (t) => {
  const served = new Set(['dev', 'prod', 'arn:aws:eks:eu-west-1:1:cluster/team', 'a', 'a/b', 'caf\u00e9'])
  const longest = Math.max(...[...served].map((n) => n.length))
  const split = (target: string) => splitClusterPrefix(target, (n) => served.has(n), longest)
  const arn = 'arn:aws:eks:eu-west-1:1:cluster/team'
  const cases: Array<[string, { name: string | undefined; served: boolean; prefix: string; rest: string } | undefined]> = [
    ['/api/v1/pods', undefined],
    ['/clustersx/a', undefined],
    ['/clusters/dev/api?watch=1', { name: 'dev', served: true, prefix: '/clusters/dev', rest: '/api?watch=1' }],
    ['/clusters/dev', { name: 'dev', served: true, prefix: '/clusters/dev', rest: '/' }],
    ['/clusters/dev?x=1', { name: 'dev', served: true, prefix: '/clusters/dev', rest: '/?x=1' }],
    // curl keeps the %2F; kubectl decodes it from --server and sends the name bare.
    [`/clusters/${encodeURIComponent(arn)}/api/v1/pods`, { name: arn, served: true, prefix: `/clusters/${encodeURIComponent(arn)}`, rest: '/api/v1/pods' }],
    [`/clusters/${arn}/api/v1/pods`, { name: arn, served: true, prefix: `/clusters/${arn}`, rest: '/api/v1/pods' }],
    ['/clusters/arn%3Aaws%3Aeks%3Aeu-west-1%3A1%3Acluster/team/version', { name: arn, served: true, prefix: '/clusters/arn%3Aaws%3Aeks%3Aeu-west-1%3A1%3Acluster/team', rest: '/version' }],
    ['/clusters/a/b/api', { name: 'a/b', served: true, prefix: '/clusters/a/b', rest: '/api' }],
    ['/clusters/a/bc/api', { name: 'a', served: true, prefix: '/clusters/a', rest: '/bc/api' }],
    ['/clusters/a%2Fb?x', { name: 'a/b', served: true, prefix: '/clusters/a%2Fb', rest: '/?x' }],
    ['/clusters/caf%C3%A9/api', { name: 'caf\u00e9', served: true, prefix: '/clusters/caf%C3%A9', rest: '/api' }],
    ['/clusters/staging/api', { name: 'staging', served: false, prefix: '/clusters/staging', rest: '/api' }],
    ['/clusters/arn:aws:eks:eu-west-1:1:cluster/other/api', { name: 'arn:aws:eks:eu-west-1:1:cluster', served: false, prefix: '/clusters/arn:aws:eks:eu-west-1:1:cluster', rest: '/other/api' }],
    ['/clusters/%zz/api', { name: undefined, served: false, prefix: '/clusters/%zz', rest: '/api' }],
    ['/clusters/dev/%zz', { name: 'dev', served: true, prefix: '/clusters/dev', rest: '/%zz' }],
    ['/clusters', { name: '', served: false, prefix: '/clusters', rest: '/' }],
    ['/clusters/', { name: '', served: false, prefix: '/clusters/', rest: '/' }],
    // Dot segments are the rest's, judged (and refused when they climb) once normalised.
    ['/clusters/dev/../prod/api', { name: 'dev', served: true, prefix: '/clusters/dev', rest: '/../prod/api' }],
  ]
  for (const [target, expected] of cases) t.same(split(target), expected, target)
  // Many slashes cost no more than the longest name: the search stops past it.
  let asked = 0
  splitClusterPrefix(`/clusters/${'a/'.repeat(8000)}x`, (n) => { asked++; return served.has(n) }, longest)
  t.ok(asked <= longest, `a target of 8,000 slashes asks about ${asked} names, not 8,000`)
  t.equal(clusterNameProblem('arn:aws:eks:eu-west-1:1:cluster/team'), undefined)
  for (const bad of ['', '.', '..', 'a/../b', 'a//b', 'a/', '/a', 'x'.repeat(1001)]) t.ok(clusterNameProblem(bad), `'${bad.slice(0, 20)}' is no cluster name`)
})

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
