// Clients that hold connection slots: refused ones that keep trickling a body, and accepted ones
// whose body stalls. Neither may keep a connection past a bound; honest slow clients are not cut.
import { writeFile } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { LINGER_MAX_MS } from '../../src/doors/linger.js'
import { pkiWithFiles } from '../helpers/pki.js'
import { clientFlags, startProxy } from '../helpers/proxy.js'
import { startCli } from '../helpers/cli.js'
import { rawRequest, statusLine } from '../helpers/http.js'
import { echoHandler, startUpstream } from '../helpers/upstream.js'
import { until } from '../helpers/until.js'

const TOKEN = 'c0ffee00c0ffee00c0ffee00c0ffee00'
const { pki, files } = await pkiWithFiles(t)
const tokenFile = join(files.dir, 'token')
await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 })
const upstream = await startUpstream(t, pki, echoHandler)

interface Client { socket: Socket; answer: () => string; closedAt: Promise<number> }

function open (port: number, head: string): Promise<Client> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    let answer = ''
    socket.on('data', (d: Buffer) => { answer += d.toString('latin1') })
    socket.on('error', () => socket.destroy())
    const closedAt = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())))
    socket.once('connect', () => {
      socket.write(head)
      resolve({ socket, answer: () => answer, closedAt })
    })
  })
}

t.test('refused clients that trickle a 100 MB body lose their slots within the linger bound; then others are served', async (t) => {
  const proxy = await startProxy(t, upstream.url, files, ['--token-file', tokenFile, '--max-connections', '20'])
  const started = Date.now()
  const clients = await Promise.all(Array.from({ length: 20 }, () => open(proxy.port,
    'POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000000\r\n\r\nx')))
  const trickle = setInterval(() => { for (const c of clients) if (!c.socket.destroyed) c.socket.write('x') }, 200)
  t.teardown(() => clearInterval(trickle))
  await until(() => clients.every((c) => c.answer().includes('\r\n\r\n')), 5_000)
  t.ok(clients.every((c) => statusLine(c.answer()) === 401), 'each got its 401 at once')
  const closed = await Promise.all(clients.map((c) => c.closedAt))
  const longest = Math.max(...closed) - started
  t.ok(longest < LINGER_MAX_MS + 2_000, `every refused connection was closed by the proxy after ${longest} ms (bound ${LINGER_MAX_MS} ms)`)
  const answer = await rawRequest(proxy.port, `GET /api/v1/pods HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`)
  t.equal(statusLine(answer), 200, 'a legitimate client is served')
  t.equal(upstream.calls().filter((r) => r.method === 'POST').length, 0, 'no refused body went upstream')
})

t.test('a refused client that sends its body fast is cut after about 1 MiB, not after 100 MB', async (t) => {
  const proxy = await startProxy(t, upstream.url, files, ['--token-file', tokenFile])
  const client = await open(proxy.port, 'PUT /api/v1/namespaces/default/configmaps/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000000\r\n\r\n')
  const chunk = Buffer.alloc(64 * 1024, 'y')
  let sent = 0
  while (!client.socket.destroyed && sent < 100_000_000) {
    if (!client.socket.write(chunk)) await new Promise((resolve) => { client.socket.once('drain', resolve); client.socket.once('close', resolve) })
    sent += chunk.length
  }
  await client.closedAt
  t.equal(statusLine(client.answer()), 401)
  t.ok(sent < 32 * 1024 * 1024, `the proxy closed the connection after ${Math.round(sent / 1024 / 1024)} MiB were sent (kernel buffers included)`)
})

t.test('a refused request whose short body arrives keeps its connection for the next request', async (t) => {
  const proxy = await startProxy(t, upstream.url, files, ['--token-file', tokenFile])
  const client = await open(proxy.port, 'POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}')
  await until(() => client.answer().includes('401'))
  client.socket.write(`GET /api/v1/pods HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`)
  await client.closedAt
  t.match(client.answer(), /^HTTP\/1\.1 401[\s\S]*HTTP\/1\.1 200 /, '401, then 200 on the same connection')
})

t.test('an accepted body that stalls is cut with 408 after --client-body-timeout; the upstream request is aborted', async (t) => {
  let aborted = 0
  const slow = await startUpstream(t, pki, (req, res) => {
    req.on('aborted', () => aborted++)
    req.on('close', () => { if (!req.complete) aborted++ })
    req.resume()
    req.on('end', () => { res.writeHead(201); res.end('{}') })
  })
  const proxy = await startProxy(t, slow.url, files, ['--client-body-timeout', '0.5'])
  const started = Date.now()
  const client = await open(proxy.port, 'POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n{"kind":')
  const closed = await client.closedAt
  t.equal(statusLine(client.answer()), 408)
  t.match(client.answer(), /"reason":"Timeout"/)
  t.match(client.answer(), /the request body stalled: nothing arrived for 0\.5 s \(--client-body-timeout\)/)
  // Told apart from the default (1 m): cut once the 0.5 s passed, and long before the default would have come.
  t.ok(closed - started >= 450 && closed - started < 20 * 500, `cut after ${closed - started} ms`)
  await until(() => aborted > 0)
  t.pass('the upstream saw the request end unfinished')
  await until(() => proxy.logs.some((l) => l.msg === 'request' && l.status === 408))
  t.match(proxy.logs.find((l) => l.msg === 'request' && l.status === 408), { error: /stalled/ })
})

t.test('a slow body that keeps arriving is not cut: the timeout is between reads, not for the whole body', async (t) => {
  const proxy = await startProxy(t, upstream.url, files, ['--client-body-timeout', '0.5'])
  const client = await open(proxy.port, 'POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\nConnection: close\r\n\r\n')
  for (let i = 0; i < 10; i++) {
    await new Promise((resolve) => setTimeout(resolve, 200))
    client.socket.write('z')
  }
  await client.closedAt
  t.equal(statusLine(client.answer()), 200, '2 s of body, a byte every 200 ms')
  t.match(client.answer(), /"bodyLength":10/)
})

t.test('a watch with no body is never timed by --client-body-timeout', async (t) => {
  const silent = await startUpstream(t, pki, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    if (req.url?.includes('watch=1')) res.write('')
    else res.end('{}')
  })
  const proxy = await startProxy(t, silent.url, files, ['--client-body-timeout', '0.3'])
  const client = await open(proxy.port, 'GET /api/v1/pods?watch=1 HTTP/1.1\r\nHost: localhost\r\n\r\n')
  await new Promise((resolve) => setTimeout(resolve, 1_000))
  t.equal(statusLine(client.answer()), 200)
  t.notOk(client.socket.destroyed, 'the silent watch is still open after 1 s')
  client.socket.destroy()
})

t.test('an upstream that fails mid-upload: 502 with Connection: close, the connection ends, and no timer is left to fire later', async (t) => {
  const failing = await startUpstream(t, pki, (req) => { req.socket.destroy() })
  const proxy = await startCli(t, [...clientFlags(failing.url, files), '--client-body-timeout', '0.3'])
  const client = await open(proxy.port, 'PUT /api/v1/namespaces/default/configmaps/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 20000000\r\n\r\n')
  client.socket.write(Buffer.alloc(512 * 1024, 'u'))
  await until(() => client.answer().includes('\r\n\r\n'), 5_000)
  t.equal(statusLine(client.answer()), 502)
  t.match(client.answer(), /connection: close/i, 'the body still arriving cannot be read: the connection ends with the answer')
  await client.closedAt
  // The body timer of that request must not outlive it (it once wrote a second answer and crashed the process).
  await new Promise((resolve) => setTimeout(resolve, 1_000))
  t.equal(proxy.child.exitCode, null, 'still running')
  t.equal(statusLine(await rawRequest(proxy.port, 'GET /-/healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')), 200)
  t.notOk(proxy.logs().some((l) => (l.level as number) >= 50), 'no error-level line')
})

t.test('pipelined refused requests share one allowance per connection: big bodies, or small ones trickled', async (t) => {
  const proxy = await startProxy(t, upstream.url, files, ['--token-file', tokenFile])
  const refusedPost = (size: number) => `POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${size}\r\n\r\n`
  // 50 refused 900 KiB bodies, one after another, as fast as the proxy reads
  const big = await open(proxy.port, refusedPost(900 * 1024))
  let sent = 0
  for (let i = 0; i < 50 && !big.socket.destroyed; i++) {
    const chunk = Buffer.concat([Buffer.alloc(900 * 1024, 'b'), Buffer.from(i < 49 ? refusedPost(900 * 1024) : '')])
    if (!big.socket.write(chunk)) await new Promise((resolve) => { big.socket.once('drain', resolve); big.socket.once('close', resolve) })
    sent += chunk.length
  }
  await big.closedAt
  t.ok(sent < 20 * 1024 * 1024, `closed after ${Math.round(sent / 1024 / 1024)} of 44 MiB were sent`)
  // small bodies trickled a byte every 100 ms, each complete within its own 5 s, one request after another
  const started = Date.now()
  const small = await open(proxy.port, refusedPost(40))
  let byte = 0
  const trickle = setInterval(() => {
    if (small.socket.destroyed) return
    small.socket.write(++byte % 40 === 0 ? `x${refusedPost(40)}` : 'x')
  }, 100)
  t.teardown(() => clearInterval(trickle))
  const closed = await small.closedAt
  clearInterval(trickle)
  t.ok(closed - started < LINGER_MAX_MS + 2_000, `closed after ${closed - started} ms, having sent ${Math.floor(byte / 40)} bodies`)
  t.ok(byte < 80, 'the second body did not get an allowance of its own')
})

t.test('a refused request with nothing more to come closes its connection after the answer', async (t) => {
  const proxy = await startProxy(t, upstream.url, files, ['--token-file', tokenFile])
  const client = await open(proxy.port, 'GET /api/v1/pods HTTP/1.1\r\nHost: localhost\r\n\r\n')
  await client.closedAt
  t.equal(statusLine(client.answer()), 401)
  t.match(client.answer(), /connection: close/i)
})

t.test('Expect: 100-continue: no 100 Continue before the guard refuses; 100 then the answer when it admits', async (t) => {
  const proxy = await startProxy(t, upstream.url, files, ['--token-file', tokenFile])
  const head = (auth: string) => `POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: localhost\r\n${auth}Content-Length: 2\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`
  const refused = await open(proxy.port, head(''))
  await until(() => refused.answer().includes('\r\n\r\n'))
  t.equal(statusLine(refused.answer()), 401, 'the refusal comes first')
  t.notMatch(refused.answer(), /100 Continue/, 'no invitation to send the body')
  refused.socket.destroy()
  const admitted = await open(proxy.port, head(`Authorization: Bearer ${TOKEN}\r\n`))
  await until(() => admitted.answer().includes('100 Continue'))
  admitted.socket.write('{}')
  await admitted.closedAt
  t.match(admitted.answer(), /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK/)
  t.match(admitted.answer(), /"bodyLength":2/)
})
