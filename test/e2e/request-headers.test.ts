// What of the caller's headers reaches the API server, through both doors alike: repeated lines
// stay separate, the caller's credentials and identity claims stay here, odd names are just names.
import { connect } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { pkiWithFiles } from '../helpers/pki.js'
import { startProxy } from '../helpers/proxy.js'
import { rawRequest, statusLine } from '../helpers/http.js'
import { startTunnelUpstream } from '../helpers/tunnel-upstream.js'
import { until } from '../helpers/until.js'

const { pki, files } = await pkiWithFiles(t)
const { upstream, upgrades } = await startTunnelUpstream(t, pki)
const proxy = await startProxy(t, upstream.url, files)

const CALLER = [
  // kubectl --as jane --as-group devs --as-group ops: the API server does not split on commas
  'Impersonate-User: jane', 'Impersonate-Group: devs', 'Impersonate-Group: ops',
  'Impersonate-Extra-Scopes: view', 'Impersonate-Extra-Scopes: edit',
  // claims about who the caller is, which only the proxy may make
  'X-Forwarded-For: 6.6.6.6', 'X-Real-IP: 6.6.6.6', 'X-Client-IP: 6.6.6.6', 'True-Client-IP: 6.6.6.6', 'X-Forwarded-Port: 443',
  'X-Forwarded-Host: evil.example', 'X-Remote-User: system:admin', 'X-Remote-Group: system:masters', 'X-Remote-Uid: 0',
  'X-Remote-Extra-Scopes: everything',
  // what a gateway in front of the API server might honour: another method, another path, another certificate
  'X-HTTP-Method-Override: DELETE', 'X-Original-URL: /api/v1/namespaces/kube-system/secrets', 'X-SSL-Client-DN: CN=admin', 'SSL-Client-Cert: x',
  'X-Client-Cert: x', 'X-Forwarded-Client-Cert: Hash=x',
  // a browser's bearer token rides in the subprotocol list; the real subprotocol must still pass
  `Sec-WebSocket-Protocol: v5.channel.k8s.io, base64url.bearer.authorization.k8s.io.${Buffer.from('callers-own-token').toString('base64url')}`,
  // names that are also properties of every JavaScript object
  'constructor: c', '__proto__: p', 'toString: s', 'hasOwnProperty: h',
]
const DROPPED = ['x-real-ip', 'x-client-ip', 'true-client-ip', 'x-forwarded-port', 'x-forwarded-host', 'x-remote-user', 'x-remote-group',
  'x-remote-uid', 'x-remote-extra-scopes', 'authorization', 'x-http-method-override', 'x-original-url', 'x-ssl-client-dn', 'ssl-client-cert',
  'x-client-cert', 'x-forwarded-client-cert']

function lines (rawHeaders: string[], name: string): string[] {
  return rawHeaders.filter((_, i, a) => i % 2 === 1 && a[i - 1]!.toLowerCase() === name)
}

function check (t: Test, rawHeaders: string[]) {
  t.same(lines(rawHeaders, 'impersonate-group'), ['devs', 'ops'], 'two Impersonate-Group lines, in order')
  t.same(lines(rawHeaders, 'impersonate-extra-scopes'), ['view', 'edit'])
  t.same(lines(rawHeaders, 'impersonate-user'), ['jane'])
  for (const name of DROPPED) t.same(lines(rawHeaders, name), [], `${name} not forwarded`)
  t.same(lines(rawHeaders, 'x-forwarded-for'), ['127.0.0.1'], 'X-Forwarded-For is ours alone')
  t.same(lines(rawHeaders, 'sec-websocket-protocol'), ['v5.channel.k8s.io'], 'the bearer subprotocol is dropped, the others pass')
  t.notMatch(rawHeaders.join('\n'), /callers-own-token|Y2FsbGVycy1vd24tdG9rZW4/, 'the token appears nowhere')
  for (const [name, value] of [['constructor', 'c'], ['__proto__', 'p'], ['tostring', 's'], ['hasownproperty', 'h']]) {
    t.same(lines(rawHeaders, name!), [value], `${name} is just a header`)
  }
}

t.test('the request door', async (t) => {
  const answer = await rawRequest(proxy.port, ['GET /api/v1/pods HTTP/1.1', 'Host: localhost', 'Authorization: Bearer callers-own-token', ...CALLER, 'Connection: close', '', ''].join('\r\n'))
  t.equal(statusLine(answer), 200)
  check(t, upstream.calls().at(-1)!.rawHeaders)
})

t.test('the upgrade door', async (t) => {
  const socket = connect(proxy.port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  let answer = ''
  socket.on('data', (d: Buffer) => { answer += d.toString('latin1') })
  socket.write(['GET /api/v1/namespaces/default/pods/web/exec?command=sh HTTP/1.1', 'Host: localhost', 'Authorization: Bearer callers-own-token',
    'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', ...CALLER, '', ''].join('\r\n'))
  await until(() => answer.includes('\r\n\r\n'))
  t.equal(statusLine(answer), 101, 'the tunnel opens')
  t.match(answer, /Sec-WebSocket-Protocol: v5\.channel\.k8s\.io/)
  check(t, upgrades.at(-1)!.rawHeaders)
})
