// One access line per request, and never a secret in any log line.
import t from 'tap'
import { pkiWithFiles } from '../helpers/pki.js'
import { echoHandler, startUpstream } from '../helpers/upstream.js'
import { clientFlags, startProxy } from '../helpers/proxy.js'
import { get } from '../helpers/http.js'
import { until } from '../helpers/until.js'

const { pki, files } = await pkiWithFiles(t)

t.test('one access line per request with method, path, status, duration and bytes', async (t) => {
  const upstream = await startUpstream(t, pki, echoHandler)
  const proxy = await startProxy(t, upstream.url, files)
  await get(`${proxy.url}/api/v1/pods?limit=1`)
  await get(`${proxy.url}/api/v1/pods`, { method: 'POST', body: 'x'.repeat(1000), headers: { 'content-type': 'application/json' } })
  // Each line is written as its response closes, which may be a moment after the client has it.
  await until(() => proxy.logs.filter((l) => l.msg === 'request').length >= 2)
  const lines = proxy.logs.filter((l) => l.msg === 'request')
  t.equal(lines.length, 2)
  t.match(lines[0], { method: 'GET', url: '/api/v1/pods?limit=1', status: 200 })
  t.type(lines[0]!.ms, 'number')
  t.ok((lines[0]!.bytesOut as number) > 100, 'bytes out counted')
  t.ok((lines[1]!.bytesIn as number) >= 1000, 'bytes in include the body')
})

t.test('--no-access-log turns the access lines off', async (t) => {
  const upstream = await startUpstream(t, pki, echoHandler)
  const proxy = await startProxy(t, upstream.url, files, ['--no-access-log'])
  await get(`${proxy.url}/api/v1/pods`)
  t.equal(proxy.logs.filter((l) => l.msg === 'request').length, 0)
})

t.test('no key material, certificate PEM, Authorization or Cookie value in any log line', async (t) => {
  const upstream = await startUpstream(t, pki, echoHandler)
  const proxy = await startProxy(t, upstream.url, files, ['--log-level', 'trace'])
  const secrets = { authorization: 'Bearer SECRET-TOKEN-123', 'proxy-authorization': 'Basic U0VDUkVULVBST1hZ', cookie: 'session=SECRET-COOKIE-456' }
  await get(`${proxy.url}/api/v1/secrets`, { headers: secrets })
  await get(`${proxy.url}/api/v1/secrets`, { headers: { ...secrets, host: 'evil.example' } })
  await upstream.close()
  await get(`${proxy.url}/api/v1/secrets`, { headers: secrets })
  await until(() => proxy.logs.filter((l) => l.msg === 'request').length === 3)
  const text = proxy.logText()
  for (const needle of ['SECRET-TOKEN-123', 'U0VDUkVULVBST1hZ', 'SECRET-COOKIE-456', 'PRIVATE KEY', 'BEGIN CERTIFICATE', pki.client.keyPem.split('\n')[1]!]) {
    t.notOk(text.includes(needle), `logs do not contain ${needle.slice(0, 20)}`)
  }
})

t.test('an upstream 401 is logged with the hint that the certificate may have expired or been revoked', async (t) => {
  const upstream = await startUpstream(t, pki, (req, res) => {
    res.writeHead(req.url === '/version' ? 200 : 401, { 'content-type': 'application/json' })
    res.end('{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}')
  })
  const proxy = await startProxy(t, upstream.url, files)
  const res = await get(`${proxy.url}/api/v1/pods`)
  t.equal(res.status, 401, 'the 401 itself passes through')
  const hint = proxy.logs.find((l) => l.level === 40 && /401 Unauthorized: the client certificate may have expired or been revoked/.test(String(l.msg)))
  t.ok(hint)
  t.match(hint, { identity: 'CN=demo-admin, O=system:masters', url: '/api/v1/pods' })
  // The request's logger is made only when it logs (util/logger.ts): its line still names the request.
  await until(() => proxy.logs.some((l) => l.msg === 'request' && l.url === '/api/v1/pods'))
  const line = proxy.logs.find((l) => l.msg === 'request' && l.url === '/api/v1/pods')
  t.match(hint, { reqId: line!.reqId }, 'the hint carries the request\'s id, as its access line does')
  t.match(String(line!.reqId), /^req-/)
})

t.test('one line says where the proxy serves (Fastify\'s own "Server listening" is not repeated); a SIGHUP that changes nothing says so', async (t) => {
  const { startCli } = await import('../helpers/cli.js')
  const { pkiWithFiles } = await import('../helpers/pki.js')
  const { echoHandler, startUpstream } = await import('../helpers/upstream.js')
  const { until } = await import('../helpers/until.js')
  const { pki, files } = await pkiWithFiles(t)
  const upstream = await startUpstream(t, pki, echoHandler)
  const proxy = await startCli(t, clientFlags(upstream.url, files))
  t.equal(proxy.logs().filter((l) => typeof l.listen === 'string').length, 1, 'our serving line')
  t.notOk(proxy.logs().some((l) => String(l.msg).startsWith('Server listening')), 'and no second one')
  proxy.child.kill('SIGHUP')
  await until(() => proxy.logs().some((l) => String(l.msg).startsWith('certificate files unchanged')), 5_000)
  t.match(proxy.logs().find((l) => String(l.msg).startsWith('certificate files unchanged')), { level: 30, trigger: 'SIGHUP', msg: /still serving as CN=demo-admin/ })
  proxy.child.kill('SIGTERM')
  await proxy.exited
})
