// The admission decision on a request head (src/admission/guard.ts), with no server: each check in
// the order it runs, and the dodges each must not fall for. The same checks over a real listener are
// test/e2e/guard.test.ts and test/e2e/paths.test.ts.
import t from 'tap'
import { tokenDigest, type CallerTokenState } from '../../../src/admission/caller-token.js'
import { checkRequest, hostName, hostPatterns, type Door, type GuardOptions } from '../../../src/admission/guard.js'
import { readTarget, splitClusterPrefix } from '../../../src/admission/target.js'

// The defaults of --accept-hosts and --accept-paths, as the settings compile them (case-insensitive).
const ACCEPT_HOSTS = ['^localhost$', '^127\\.0\\.0\\.1$', '^\\[::1\\]$'].map((p) => new RegExp(p, 'i'))
const rules = (...patterns: string[]) => patterns.map((p) => new RegExp(p, 'i'))

function guard (over: Partial<GuardOptions> = {}): GuardOptions {
  return {
    acceptHosts: hostPatterns(ACCEPT_HOSTS, '127.0.0.1'),
    allowOrigins: [],
    acceptPaths: rules('^.*'),
    rejectPaths: [],
    rejectMethods: [],
    callerToken: () => undefined,
    listenPort: () => 8001,
    scheme: 'http',
    admitOwnOrigin: true,
    ...over,
  }
}

/** A request head as Node hands it over: header lines as sent, and the parsed object (names lower-cased). */
function head (method: string, lines: Array<[string, string]>) {
  const headers: Record<string, string> = {}
  for (const [name, value] of lines) headers[name.toLowerCase()] ??= value
  return { method, headers, rawHeaders: lines.flat() }
}

const local: [string, string] = ['Host', 'localhost:8001']
// The target as the first hook reads it, once; `clusters`: several are served, these by name.
const judge = (target: string, lines: Array<[string, string]> = [local], options = guard(), method = 'GET', door: Door = 'request', clusters?: string[]) =>
  checkRequest(readTarget(target, clusters && ((o) => splitClusterPrefix(o, (n) => clusters.includes(n), 100))),
    head(method, lines), options, door)

t.test('an ordinary request passes', async (t) => {
  for (const host of ['localhost:8001', 'LOCALHOST', '127.0.0.1:8001', '[::1]:8001']) {
    t.equal(judge('/api/v1/namespaces/default/pods', [['Host', host]]), undefined, host)
  }
  t.equal(judge('/api/v1/pods?watch=1', [local], guard(), 'GET', 'upgrade'), undefined, 'by either door')
})

t.test('the shape of the head: bounded lines, one Host, no fragment', async (t) => {
  const many = Array.from({ length: 100 }, (_, i): [string, string] => ['X-Dup', String(i)])
  t.equal(judge('/api', [local, ...many.slice(1)]), undefined, '100 lines pass')
  t.match(judge('/api', [local, ...many]), { httpStatus: 431, message: 'more than 100 header fields' }, '101 lines, though Node joins them into one value')
  t.match(judge('/api', [local, ['host', 'evil.example']]), { httpStatus: 400, message: 'more than one Host header' })
  t.match(judge('/api/v1/namespaces/default/pods/web/exec#'), { httpStatus: 400, message: /fragment/ })
})

t.test('Host: only accepted names (DNS rebinding)', async (t) => {
  t.match(judge('/api', []), { httpStatus: 400, message: /a Host header is required/ })
  for (const host of ['evil.example', 'localhost.evil.example', 'localhost@evil.example', '127.0.0.1.nip.io', '[::1]x', 'localhost:8001/x']) {
    t.match(judge('/api', [['Host', host]]), { httpStatus: 403, message: /is not accepted/ }, host)
  }
  t.equal(judge('/api', [['Host', '10.0.0.5:8001']], guard({ acceptHosts: hostPatterns(ACCEPT_HOSTS, '10.0.0.5') })), undefined, 'the listen address is added')
  const names: Array<[string, string | undefined]> = [['[::1]:8001', '[::1]'], ['LocalHost:80', 'localhost'], ['localhost:', 'localhost'],
    ['a@b', undefined], ['[::1]x', undefined], ['a b', undefined], ['a/b', undefined], ['', undefined]]
  for (const [authority, name] of names) t.equal(hostName(authority), name, `host name of '${authority}'`)
})

t.test('absolute-form: only a URL of this very listener (not an open proxy)', async (t) => {
  t.equal(judge('http://localhost:8001/api/v1/pods'), undefined)
  for (const target of ['http://evil.example/api', 'http://localhost:9999/api', 'http://localhost/api', 'https://localhost:8001/api', '*', 'localhost:443']) {
    t.match(judge(target), { httpStatus: 403, message: /is not an open proxy/ }, target)
  }
})

t.test('web pages: a foreign Origin, or a browser\'s cross-site request, is refused', async (t) => {
  t.match(judge('/api', [local, ['Origin', 'https://evil.example']]), { httpStatus: 403, message: /\(Origin: https:\/\/evil\.example\).*--allow-origin https:\/\/evil\.example/ })
  t.match(judge('/api', [local, ['Origin', 'null']]), { httpStatus: 403 })
  t.match(judge('/api', [local, ['Origin', 'http://localhost:3000']]), { httpStatus: 403 }, 'a page on another local port')
  for (const site of ['cross-site', 'same-site']) t.match(judge('/api', [local, ['Sec-Fetch-Site', site]]), { httpStatus: 403, message: /Sec-Fetch-Site/ }, site)
  t.equal(judge('/api', [local, ['Sec-Fetch-Site', 'none']]), undefined, 'typed into the address bar')
  t.equal(judge('/api', [local, ['Origin', 'http://localhost:3000']], guard({ allowOrigins: ['http://localhost:3000'] })), undefined, 'an --allow-origin page')
  // A WebSocket library sends the URL it dials as Origin: no browser, so admitted; a page the proxy
  // serves has that origin too, and is refused.
  t.equal(judge('/api', [local, ['Origin', 'http://localhost:8001']]), undefined)
  t.match(judge('/api', [local, ['Origin', 'http://localhost:8001'], ['Sec-Fetch-Site', 'same-origin']]), { httpStatus: 403 })
  t.match(judge('/api', [local, ['Origin', 'http://localhost:8001']], guard({ admitOwnOrigin: false })), { httpStatus: 403 }, 'not where no Host is checked')
})

t.test('the callers\' token: compared whole; the probes need none', async (t) => {
  const withToken = guard({ callerToken: (): CallerTokenState => ({ digest: tokenDigest('s3cret') }) })
  t.equal(judge('/api', [local, ['Authorization', 'Bearer s3cret']], withToken), undefined)
  t.equal(judge('/api', [local, ['Authorization', 'bearer   s3cret ']], withToken), undefined, 'the scheme in any case, spaces around')
  t.match(judge('/api', [local], withToken), { httpStatus: 401, message: /needs Authorization: Bearer <the token in its --token-file>, the token of the proxy's own callers, not a token of the API server/ })
  for (const wrong of ['Bearer s3cre', 'Bearer s3crett', 'Bearer S3CRET', 'Basic s3cret', 's3cret', 'Bearer s3cret extra']) {
    t.match(judge('/api', [local, ['Authorization', wrong]], withToken), { httpStatus: 401 }, wrong)
  }
  t.match(judge('/api', [local, ['Authorization', 'Bearer guess']], withToken), { message: /the token sent is not it/ })
  for (const open of ['/-/healthz', '/-/readyz']) t.equal(judge(open, [local], withToken), undefined, `${open}: a probe`)
  t.match(judge('/-/readyz?cluster=dev', [local], withToken), { httpStatus: 401 }, 'asked for a cluster\'s faults, it needs the token')
  t.match(judge('/-/status', [local], withToken), { httpStatus: 401 })
  t.match(judge('/api', [local, ['Authorization', 'Bearer s3cret']], guard({ callerToken: () => ({ broken: 'no file' }) })),
    { httpStatus: 401, message: /refuses every caller until its --token-file holds a token again/ })
  t.match(judge('/api', [local], guard({ callerToken: () => ({ digest: tokenDigest('t'), run: true }) })), { httpStatus: 401, message: /serves only the command it runs/ })
})

t.test('methods: the Kubernetes API\'s only, and --reject-methods', async (t) => {
  for (const method of ['TRACE', 'CONNECT', 'PROPFIND', 'get']) {
    t.match(judge('/api', [local], guard(), method), { httpStatus: 405, message: /is not forwarded/ }, method)
  }
  const readOnly = guard({ rejectMethods: rules('^(POST|PUT|PATCH|DELETE)$') })
  t.match(judge('/api/v1/pods/x', [local], readOnly, 'DELETE'), { httpStatus: 405, message: 'method DELETE is refused by --reject-methods ^(POST|PUT|PATCH|DELETE)$' })
  t.equal(judge('/api/v1/pods/x', [local], readOnly, 'GET'), undefined)
})

t.test('path rules judge the path the API server acts on, however it is written', async (t) => {
  const noExec = guard({ rejectPaths: rules('^/api/.*/pods/.*/exec') })
  const dodges = [
    '/api/v1/namespaces/default/pods/web/exec',
    '/api/v1/namespaces/default/pods/web/%65xec',
    '/api/v1/namespaces/default/pods/web/EXEC',
    '/api/v1/namespaces/default/pods/web/x/../exec',
    '/api/v1/namespaces/default/pods/web/x/%2e%2e/exec',
    '/api/v1/namespaces/default/pods/web/x/%2E%2E/exec',
    '/api/v1/namespaces/default/pods/web/x/.%2e/exec',
    '//api/v1/namespaces/default/pods/web//exec',
    '/api/v1/namespaces/default/pods/web/./exec',
    '/api/v1/namespaces%2fdefault%2fpods%2fweb%2fexec',
    '/api\\v1\\namespaces\\default\\pods\\web\\exec',
    '/api/v1/namespaces/default/pods/web/x%5c..%5cexec',
    '/api/v1/namespaces/default/pods/web/exec?command=sh',
    'http://localhost:8001/api/v1/namespaces/default/pods/web/%65xec',
  ]
  for (const target of dodges) t.match(judge(target, [local], noExec, 'POST'), { httpStatus: 403, message: /is refused by --reject-paths/ }, target)
  t.equal(judge('/api/v1/namespaces/default/pods/web/log', [local], noExec), undefined, 'other paths pass')
  t.match(judge('/openapi/v2', [local], guard({ acceptPaths: rules('^/api/', '^/apis/') })), { httpStatus: 403, message: /^path \/openapi\/v2 is not accepted by --accept-paths / })
  const unreadable: Array<[string, RegExp]> = [['/api/%zz', /malformed percent-encoding/], ['/../etc', /climbs above the root/], ['/api/%2e%2e/%2e%2e/x', /climbs above the root/],
    ['/api/v1/pods%00', /control characters/], ['/api/v1/pods%0d%0aX-Injected:%201', /control characters/]]
  for (const [target, message] of unreadable) t.match(judge(target, [local], noExec), { httpStatus: 400, message }, target)
})

t.test('with several clusters the rules judge what follows /clusters/NAME', async (t) => {
  const options = guard({ rejectPaths: rules('^/api/v1/secrets') })
  t.match(judge('/clusters/dev/api/v1/secrets', [local], options, 'GET', 'request', ['dev']), { httpStatus: 403 })
  t.match(judge('/clusters/dev/api/v1/pods/../secrets', [local], options, 'GET', 'request', ['dev']), { httpStatus: 403 })
  t.match(judge('/clusters/dev/api/v1/%2e%2e/v1/secrets', [local], options, 'GET', 'request', ['dev']), { httpStatus: 403 })
  t.equal(judge('/clusters/dev/api/v1/pods', [local], options, 'GET', 'request', ['dev']), undefined)
})

t.test('the proxy\'s own endpoints: GET and HEAD only, never upgraded, not subject to the path rules', async (t) => {
  const strict = guard({ acceptPaths: rules('^/api/'), rejectPaths: rules('^/') })
  for (const method of ['GET', 'HEAD']) t.equal(judge('/-/metrics', [local], strict, method), undefined, method)
  t.match(judge('/-/healthz', [local], guard(), 'POST'), { httpStatus: 405, message: /answer only GET and HEAD, not POST/ })
  t.match(judge('/-/healthz', [local, ['Upgrade', 'websocket']], guard(), 'GET', 'upgrade'), { httpStatus: 400, message: /do not upgrade \(Upgrade: websocket\)/ })
  t.equal(judge('/x/../-/healthz', [local], strict), undefined, 'judged once normalised, as it is answered')
})

t.test('an upgrade carries no body: it would be taken for the tunnel\'s bytes', async (t) => {
  const upgrade = (lines: Array<[string, string]>) => judge('/api/v1/namespaces/default/pods/web/exec', [local, ['Upgrade', 'websocket'], ...lines], guard(), 'POST', 'upgrade')
  t.match(upgrade([['Content-Length', '5']]), { httpStatus: 400, message: 'an Upgrade request must not carry a body' })
  t.match(upgrade([['Transfer-Encoding', 'chunked']]), { httpStatus: 400 })
  t.equal(upgrade([['Content-Length', '0']]), undefined)
})
