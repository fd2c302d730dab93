// The request target read as the API server reads it (src/admission/target.ts): the path a rule
// judges is the path forwarded, and the /clusters/NAME prefix is split from the raw target.
import t from 'tap'
import { clusterNameProblem, normalizeTarget, readTarget, splitClusterPrefix } from '../../../src/admission/target.js'

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

t.test('normalisation: what a path rule must not be dodged by, and what must stay as sent', async (t) => {
  const resolved: Array<[string, string, string]> = [
    // encoded dots, in either case and half-encoded, are dot segments
    ['/api/v1/namespaces/default/pods/x/.%2e/exec', '/api/v1/namespaces/default/pods/exec', '/api/v1/namespaces/default/pods/exec'],
    ['/api/v1/pods/%2E%2E', '/api/v1', '/api/v1'],
    ['/api/v1/%2e%2e/%2e%2e/etc', '/etc', '/etc'],
    ['/api/./v1/.', '/api/v1', '/api/v1'],
    ['/%2e', '/', '/'],
    // encoded slashes and backslashes separate segments, as they do for the API server's path cleaning
    ['/%2F%2Fapi', '/api', '/api'],
    ['/api/v1/..%5c..%5cx', '/x', '/x'],
    // a decoded ? is part of the path, so it goes upstream encoded, never as a query
    ['/api/v1/pods%3Fwatch=1', '/api/v1/pods?watch=1', '/api/v1/pods%3Fwatch=1'],
    // decoded once: %25 is a literal %, not the start of another escape
    ['/a%25b', '/a%b', '/a%25b'],
    ['/a%C3%A9', '/a\u00e9', '/a%C3%A9'],
    // the query is not a path: its dots and slashes are the caller's, sent as they are
    ['/api/v1/pods?x=%2e%2e/..', '/api/v1/pods', '/api/v1/pods?x=%2e%2e/..'],
  ]
  for (const [target, path, forward] of resolved) t.same(normalizeTarget(target), { ok: true, path, forward }, target)
  const refused: Array<[string, RegExp]> = [
    ['/..%2fsecrets', /climbs above the root/],
    ['/a/%2e%2e%2f%2e%2e/b', /climbs above the root/],
    ['/a/b\\..\\..\\..\\c', /climbs above the root/],
    ['/a%0d%0aSet-Cookie:x', /control characters/],
    ['/a%7f', /control characters/],
    ['/a%09b', /control characters/],
    // not UTF-8: the API server could read it otherwise
    ['/a%e9', /malformed percent-encoding/],
    ['/a%2', /malformed percent-encoding/],
  ]
  for (const [target, message] of refused) t.match(normalizeTarget(target), { ok: false, message }, target)
  // Already normal: the caller's bytes, untouched.
  for (const target of ['/', '/api/v1/namespaces/default/pods?labelSelector=app%3Dweb', '/apis/apps/v1/deployments?watch=1&resourceVersion=5']) {
    t.same(normalizeTarget(target), { ok: true, path: target.split('?')[0], forward: target }, target)
  }
})

t.test('a target read once: origin form, cluster prefix, the path judged, what goes upstream, a watch or not', async (t) => {
  t.match(readTarget('http://localhost:8001/api/v1/pods?watch=1'),
    { origin: '/api/v1/pods?watch=1', prefixed: false, prefix: '', rest: '/api/v1/pods?watch=1', path: '/api/v1/pods', forward: '/api/v1/pods?watch=1', watch: true })
  t.match(readTarget('http://localhost/a/../b?q'), { origin: '/b?q', path: '/b', forward: '/b?q', watch: false }, 'a URL\'s dot segments resolved as URLs resolve them')
  t.match(readTarget('/%zz'), { path: undefined, problem: /malformed percent-encoding/, forward: '/%zz' }, 'what cannot be normalised goes as sent (the guard refuses it)')
  const split = (origin: string) => splitClusterPrefix(origin, (n) => n === 'dev', 3)
  t.match(readTarget('/clusters/dev/api/v1/%2e%2e/pods?watch=1', split),
    { prefixed: true, prefix: '/clusters/dev', name: 'dev', rest: '/api/v1/%2e%2e/pods?watch=1', path: '/api/pods', forward: '/api/pods?watch=1', watch: true })
  t.match(readTarget('/clusters/staging/api', split), { prefixed: true, prefix: '', name: 'staging', rest: '/api' }, 'a name not served: no prefix to keep')
  t.match(readTarget('/api/v1/pods', split), { prefixed: false, prefix: '', name: undefined, rest: '/api/v1/pods' })
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
