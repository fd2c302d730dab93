// What a user sees when the upstream cannot be used: a Status JSON that says why, and the
// request never reaches a server that is not the one --cacert vouches for.
import { createServer as createHttpServer } from 'node:http'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { freePort } from '../helpers/net.js'
import { createCA, pkiWithFiles } from '../helpers/pki.js'
import { echoHandler, startUpstream } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'
import { get } from '../helpers/http.js'
import { startMtlsServer } from '../../src/demo/api-server.js'

const { pki, files } = await pkiWithFiles(t)

type Asserts = { equal: (a: unknown, b: unknown) => void; same: (a: unknown, b: unknown) => void }

function isStatus (t: Asserts, body: Record<string, unknown>, code: number): void {
  t.equal(body.kind, 'Status')
  t.equal(body.apiVersion, 'v1')
  t.equal(body.status, 'Failure')
  t.equal(body.code, code)
  t.same(body.metadata, {})
}

t.test('an upstream whose certificate comes from another CA is never sent the request', async (t) => {
  const impostorCA = await createCA('impostor CA')
  const impostorCert = await impostorCA.issue({ commonName: 'kube-apiserver', usage: 'server' })
  let requests = 0
  // It even accepts our client certificate: only our verification of *its* certificate stops us.
  const impostor = await startMtlsServer({
    clientCaPem: pki.ca.certPem, serverCert: impostorCert, handler: (req, res) => { requests++; echoHandler(req, res) },
  })
  t.teardown(() => impostor.close())
  // The CLI would not start against it (startup-check.test.ts): what a request meets if it did, or if the server changed since.
  const proxy = await startProxy(t, impostor.url, files, [], { startupCheck: false })
  const res = await get(`${proxy.url}/api/v1/secrets`, { method: 'POST', body: '{"token":"x"}', headers: { 'content-type': 'application/json' } })
  t.equal(res.status, 502)
  isStatus(t, res.json(), 502)
  t.match(res.json().message, /upstream certificate is not signed by the CA in --cacert/)
  t.equal(requests, 0, 'the impostor saw no request')
  const ready = await get(`${proxy.url}/-/readyz`)
  t.equal(ready.status, 503)
  t.match(ready.json().message, /not signed by the CA in --cacert/)
})

t.test('a server certificate for another name is refused; --tls-server-name accepts it', async (t) => {
  const other = await pki.ca.issue({ commonName: 'api.cluster.internal', usage: 'server', dnsNames: ['api.cluster.internal'], ipAddresses: [] })
  let requests = 0
  const server = await startMtlsServer({
    clientCaPem: pki.ca.certPem, serverCert: other, handler: (req, res) => { requests++; echoHandler(req, res) },
  })
  t.teardown(() => server.close())
  const strict = await startProxy(t, server.url, files, [], { startupCheck: false })
  const refused = await get(`${strict.url}/version`)
  t.equal(refused.status, 502)
  t.match(refused.json().message, /not valid for the name '127\.0\.0\.1'; set --tls-server-name/)
  const seenBefore = requests
  const named = await startProxy(t, server.url, files, ['--tls-server-name', 'api.cluster.internal'])
  const ok = await get(`${named.url}/version`)
  t.equal(ok.status, 200)
  t.equal(ok.json().url, '/version')
  t.equal(seenBefore, 0, 'nothing reached the server under the wrong name')
})

t.test('an upstream that does not accept our client certificate: 502 that says so', async (t) => {
  const otherClients = await createCA('other client CA')
  const server = await startMtlsServer({ clientCaPem: otherClients.certPem, serverCert: pki.server, handler: echoHandler })
  t.teardown(() => server.close())
  const proxy = await startProxy(t, server.url, files)
  const res = await get(`${proxy.url}/api/v1/pods`)
  t.equal(res.status, 502)
  isStatus(t, res.json(), 502)
  t.match(res.json().message, /rejected our client certificate|closed the connection/)
})

t.test('an upstream port that speaks plain HTTP: 502 that says so in words, not OpenSSL\'s', async (t) => {
  const plain = createHttpServer((_req, res) => res.end('hello'))
  await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve))
  t.teardown(() => plain.close())
  const { port } = plain.address() as AddressInfo
  const proxy = await startProxy(t, `https://127.0.0.1:${port}`, files, [], { startupCheck: false })
  const res = await get(`${proxy.url}/api/v1/pods`)
  t.equal(res.status, 502)
  isStatus(t, res.json(), 502)
  t.equal(res.json().message, `the API server at 127.0.0.1:${port} does not speak TLS on that port (is it plain HTTP? try the https port)`)
})

t.test('upstream down: 502 Status saying the connection was refused', async (t) => {
  const port = await freePort()
  const proxy = await startProxy(t, `https://127.0.0.1:${port}`, files)
  const res = await get(`${proxy.url}/api/v1/pods`)
  t.equal(res.status, 502)
  isStatus(t, res.json(), 502)
  t.equal(res.json().reason, 'BadGateway')
  t.match(res.json().message, new RegExp(`upstream 127\\.0\\.0\\.1:${port} refused the connection`))
  t.equal(res.headers['content-type'], 'application/json; charset=utf-8')
})

t.test('an upstream that never answers: 504 after --response-timeout', async (t) => {
  const upstream = await startUpstream(t, pki, (req, res) => {
    if (req.url === '/version') { res.end('{}') }
    // hold the request; the test's teardown closes it
  })
  const proxy = await startProxy(t, upstream.url, files, ['--response-timeout', '0.3'])
  // Without the setting the default (2 m) would apply: answered well before that, and not before the 0.3 s.
  const DEFAULT_MS = 120_000
  const started = Date.now()
  const res = await get(`${proxy.url}/api/v1/pods`)
  t.equal(res.status, 504)
  isStatus(t, res.json(), 504)
  t.equal(res.json().reason, 'Timeout')
  t.match(res.json().message, /did not answer in time \(--response-timeout\)/)
  const waited = Date.now() - started
  t.ok(waited >= 290 && waited < DEFAULT_MS / 4, `answered after ${waited} ms`)
})

t.test('a TCP peer that never completes the TLS handshake: 504 after --connect-timeout', async (t) => {
  const silent = createServer(() => { /* accept and say nothing */ })
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { silent.close() })
  const port = (silent.address() as AddressInfo).port
  const proxy = await startProxy(t, `https://127.0.0.1:${port}`, files, ['--connect-timeout', '0.3'])
  const res = await get(`${proxy.url}/api/v1/pods`)
  t.equal(res.status, 504)
  t.match(res.json().message, /timed out connecting to upstream/)
})
