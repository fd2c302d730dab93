// How an upstream answer is relayed to the client (src/forwarding/relay.ts): cuts stay visible, departures
// travel upstream, repeated headers stay separate.
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'
import t from 'tap'
import { pkiWithFiles } from '../helpers/pki.js'
import { startProxy } from '../helpers/proxy.js'
import { startUpstream } from '../helpers/upstream.js'
import { until } from '../helpers/until.js'
import { get, rawRequest } from '../helpers/http.js'

const { pki, files } = await pkiWithFiles(t)

/** The whole response as the client saw it: headers, body, and whether it ended properly. */
function fetchRaw (url: string): Promise<{ res: IncomingMessage; body: string; complete: boolean }> {
  return new Promise((resolve, reject) => {
    httpRequest(url, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      const done = () => resolve({ res, body, complete: res.complete })
      res.on('end', done)
      res.on('error', done)
      res.on('aborted', done)
    }).on('error', reject).end()
  })
}

for (const framing of ['content-length', 'chunked'] as const) {
  t.test(`an upstream that dies mid-body (${framing}): the client sees a cut response, not a short one that looks whole`, async (t) => {
    const upstream = await startUpstream(t, pki, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', ...(framing === 'content-length' ? { 'content-length': '1000' } : {}) })
      res.write('{"kind":"PodList","items":[')
      setTimeout(() => res.socket?.destroy(), 50)
    })
    const proxy = await startProxy(t, upstream.url, files)
    const got = await fetchRaw(`${proxy.url}/api/v1/pods`)
    t.equal(got.res.statusCode, 200)
    t.equal(got.body, '{"kind":"PodList","items":[', 'what arrived before the cut was relayed')
    t.equal(got.complete, false, 'and the response did not end cleanly')
  })
}

t.test('a client gone before the upstream answers: the upstream request is aborted at once', async (t) => {
  const ANSWER_MS = 5_000
  const closed: number[] = []
  const upstream = await startUpstream(t, pki, (req, res) => {
    if (req.url === '/api/v1/pods') req.on('close', () => closed.push(Date.now()))
    setTimeout(() => { if (!res.destroyed) res.end('{}') }, ANSWER_MS).unref()
  })
  const proxy = await startProxy(t, upstream.url, files)
  const client = connect(proxy.port, '127.0.0.1')
  client.write(`GET /api/v1/pods HTTP/1.1\r\nHost: localhost:${proxy.port}\r\n\r\n`)
  await until(() => upstream.calls().length === 1)
  const left = Date.now()
  client.destroy()
  await until(() => closed.length === 1)
  t.ok(closed[0]! - left < ANSWER_MS / 2, `the upstream saw its request closed ${closed[0]! - left} ms after the client left, well before it would have answered`)
})

t.test('repeated response headers (Set-Cookie) reach the client as separate lines', async (t) => {
  const upstream = await startUpstream(t, pki, (_req, res) => {
    res.writeHead(200, [['content-type', 'application/json'], ['set-cookie', 'a=1; Path=/'], ['set-cookie', 'b=2; Path=/'], ['x-note', 'one'], ['x-note', 'two']].flat())
    res.end('{}')
  })
  const proxy = await startProxy(t, upstream.url, files)
  const got = await fetchRaw(`${proxy.url}/api/v1/pods`)
  t.same(got.res.headers['set-cookie'], ['a=1; Path=/', 'b=2; Path=/'])
  const notes = got.res.rawHeaders.filter((_, i, all) => i % 2 === 1 && all[i - 1]!.toLowerCase() === 'x-note')
  t.same(notes, ['one', 'two'], 'each value kept, in order')
})

t.test('an upstream answer with a header Node will not send: 502, and the proxy goes on serving', async (t) => {
  // A raw TLS server, since Node's own HTTP server refuses to write such a header.
  const tls = { key: pki.server.keyPem, cert: pki.server.certPem, ca: pki.ca.certPem, requestCert: true, rejectUnauthorized: true }
  const server = createTlsServer(tls, (socket) => {
    socket.once('data', (d: Buffer) => {
      const ok = d.toString('latin1').includes('/version')
      socket.end(ok
        ? 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}'
        : 'HTTP/1.1 200 OK\r\nx-bad: a\x01b\r\ncontent-length: 2\r\n\r\n{}')
    })
    socket.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  const proxy = await startProxy(t, `https://127.0.0.1:${(server.address() as AddressInfo).port}`, files)
  const bad = await get(`${proxy.url}/api/v1/pods`)
  t.equal(bad.status, 502)
  t.equal(bad.json().reason, 'BadGateway')
  const again = await get(`${proxy.url}/version`)
  t.equal(again.status, 200, 'the next request is served')
})

t.test('103 Early Hints before the answer: the hints reach an HTTP/1.1 client, then the answer itself', async (t) => {
  const upstream = await startUpstream(t, pki, (_req, res) => {
    res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' })
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('{"ok":true}')
    }, 20)
  })
  const proxy = await startProxy(t, upstream.url, files)
  const answer = await rawRequest(proxy.port, 'GET /api/v1/pods HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
  t.match(answer, /^HTTP\/1\.1 103 Early Hints\r\n[Ll]ink: <\/style\.css>; rel=preload; as=style\r\n\r\nHTTP\/1\.1 200 OK\r\n/)
  t.ok(answer.includes('{"ok":true}'), 'the answer and its body follow')
  const old = await rawRequest(proxy.port, 'GET /api/v1/pods HTTP/1.0\r\nHost: localhost\r\n\r\n')
  t.match(old, /^HTTP\/1\.1 200 OK\r\n/, 'an HTTP/1.0 client gets no 1xx')
  t.ok(old.includes('{"ok":true}'))
})
