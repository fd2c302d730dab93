// exec, attach, cp and port-forward through the proxy: upgrade tunnels over mutual TLS.
import { connect, type Socket } from 'node:net'
import { writeFile } from 'node:fs/promises'
import t from 'tap'
import WebSocket from 'ws'
import { pkiWithFiles, type Teardown } from '../helpers/pki.js'
import { startProxy } from '../helpers/proxy.js'
import { rawRequest, statusLine } from '../helpers/http.js'
import { SUBPROTOCOLS, startTunnelUpstream } from '../helpers/tunnel-upstream.js'
import { timed, until } from '../helpers/until.js'

const EXEC = '/api/v1/namespaces/default/pods/web/exec?command=sh&command=-c&command=echo%20hi&container=app&stdin=true&stdout=true&stderr=true'

function openWs (url: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, SUBPROTOCOLS, { headers })
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
    ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { statusCode: res.statusCode })))
  })
}

/** A raw upgrade on its own socket: resolves once the answer's head arrived; `take()` returns and clears what came since. */
async function rawUpgrade (port: number, lines: string[], opts: { allowHalfOpen?: boolean } = {}) {
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: opts.allowHalfOpen ?? false })
  await new Promise((resolve) => socket.once('connect', resolve))
  let received = Buffer.alloc(0)
  socket.on('data', (d: Buffer) => { received = Buffer.concat([received, d]) })
  socket.write([...lines, '', ''].join('\r\n'))
  await until(() => received.includes('\r\n\r\n'))
  const end = received.indexOf('\r\n\r\n') + 4
  const head = received.subarray(0, end).toString()
  received = received.subarray(end)
  return {
    socket,
    head,
    received: () => received,
    take: () => { const r = received; received = Buffer.alloc(0); return r },
  }
}

/** A fresh PKI, an upstream that tunnels, and the proxy in front of it: each torn down with the test. */
async function throughProxy (t: Teardown) {
  const { pki, files } = await pkiWithFiles(t)
  const tunnel = await startTunnelUpstream(t, pki)
  const proxy = await startProxy(t, tunnel.upstream.url, files)
  return { ...tunnel, proxy, pki, files }
}

function echo (ws: WebSocket, data: Buffer): Promise<Buffer> {
  return new Promise((resolve) => {
    ws.once('message', (d) => resolve(d as Buffer))
    ws.send(data, { binary: true })
  })
}

t.test('WebSocket exec: v5.channel.k8s.io negotiated, binary frames both ways, headers as kubectl needs them', async (t) => {
  const { upstream, upgrades, proxy } = await throughProxy(t)
  const ws = await openWs(`ws://127.0.0.1:${proxy.port}${EXEC}`, { authorization: 'Bearer someone-elses', 'impersonate-user': 'jane', 'x-custom': 'kept' })
  t.equal(ws.protocol, 'v5.channel.k8s.io', 'subprotocol negotiated end to end')
  for (const size of [1, 1000, 200_000]) {
    const frame = Buffer.alloc(size, 7)
    frame[0] = 1 // channel 1: stdout
    t.same(await echo(ws, frame), frame, `${size}-byte binary frame echoed`)
  }
  const seen = upgrades[0]!
  t.equal(seen.url, EXEC, 'path and query byte-exact')
  t.equal(seen.method, 'GET')
  t.equal(seen.headers.host, `127.0.0.1:${upstream.port}`)
  t.equal(seen.headers.authorization, undefined, 'the caller\'s Authorization is dropped')
  t.equal(seen.headers['impersonate-user'], 'jane')
  t.equal(seen.headers['x-custom'], 'kept')
  t.equal(seen.headers['sec-websocket-protocol'], SUBPROTOCOLS.join(','), 'the full subprotocol list, exactly as sent')
  t.ok(seen.headers['sec-websocket-key'], 'Sec-WebSocket-Key kept')
  t.equal(seen.headers['sec-websocket-version'], '13')
  t.equal(seen.headers.upgrade, 'websocket')
  t.equal(seen.headers['x-forwarded-for'], '127.0.0.1')
  t.equal(seen.cn, 'demo-admin', 'the tunnel carries our client certificate')
  ws.close()
  await until(() => proxy.app.tunnels.size === 0)
  const line = proxy.logs.find((l) => l.msg === 'request' && l.upgrade === 'websocket')
  t.match(line, { method: 'GET', status: 101, url: EXEC }, 'logged like a request')
})

t.test('SPDY/3.1 on a POST: 101 relayed with X-Stream-Protocol-Version, raw bytes echoed', async (t) => {
  const { upgrades, proxy } = await throughProxy(t)
  const { socket, head, received } = await rawUpgrade(proxy.port, [
    `POST ${EXEC} HTTP/1.1`, `Host: localhost:${proxy.port}`, 'Connection: Upgrade', 'Upgrade: SPDY/3.1',
    'X-Stream-Protocol-Version: v4.channel.k8s.io', 'X-Stream-Protocol-Version: v3.channel.k8s.io', 'X-Stream-Protocol-Version: v2.channel.k8s.io',
    'Content-Length: 0',
  ])
  t.match(head, /^HTTP\/1\.1 101 Switching Protocols\r\n/)
  t.match(head, /X-Stream-Protocol-Version: v4\.channel\.k8s\.io/)
  t.match(head, /Upgrade: SPDY\/3\.1/)
  const payload = Buffer.from([0x80, 0x03, 0x00, 0x01, 0, 0, 0, 4, 1, 2, 3, 4])
  socket.write(payload)
  await until(() => received().length >= payload.length)
  t.same(received(), payload, 'raw SPDY bytes echoed')
  t.same(upgrades[0]!.rawHeaders.filter((_, i, a) => i % 2 === 1 && a[i - 1]!.toLowerCase() === 'x-stream-protocol-version'),
    ['v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io'], 'every X-Stream-Protocol-Version, in order')
  t.equal(upgrades[0]!.method, 'POST')
  socket.destroy()
})

t.test('port-forward over WebSocket: SPDY/3.1+portforward.k8s.io negotiated, bytes relayed (raw client)', async (t) => {
  const { upgrades, proxy } = await throughProxy(t)
  const { socket, head, received } = await rawUpgrade(proxy.port, [
    'GET /api/v1/namespaces/default/pods/web/portforward?ports=8080 HTTP/1.1', `Host: 127.0.0.1:${proxy.port}`, 'Connection: Upgrade', 'Upgrade: websocket',
    'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Protocol: SPDY/3.1+portforward.k8s.io',
  ])
  t.match(head, /^HTTP\/1\.1 101 /)
  t.match(head, /Sec-WebSocket-Protocol: SPDY\/3\.1\+portforward\.k8s\.io/)
  t.match(head, /Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/)
  t.equal(upgrades[0]!.headers['sec-websocket-protocol'], 'SPDY/3.1+portforward.k8s.io')
  const bytes = Buffer.from([0x82, 0x04, 0x00, 0x1f, 0x90, 0x00]) // a binary frame: stream 0, port 8080
  socket.write(bytes)
  await until(() => received().length >= bytes.length)
  t.same(received(), bytes, 'bytes relayed both ways')
  socket.destroy()
})

t.test('a refused upgrade: the upstream\'s 403 Status is relayed and the connection closed', async (t) => {
  const { proxy } = await throughProxy(t)
  const answer = await rawRequest(proxy.port, ['GET /api/v1/namespaces/default/pods/forbidden/exec?command=ls HTTP/1.1', 'Host: localhost',
    'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Protocol: v5.channel.k8s.io', '', ''].join('\r\n'))
  t.equal(statusLine(answer), 403)
  t.match(answer, /Content-Length: \d+/i)
  t.match(answer, /Connection: close/i)
  t.match(answer, /"message":"pods \\"web\\" is forbidden: cannot exec"/)
})

t.test('an unreachable upstream: 502 Status before any 101', async (t) => {
  const { upstream, proxy } = await throughProxy(t)
  await upstream.close()
  const answer = await rawRequest(proxy.port, [`GET ${EXEC} HTTP/1.1`, 'Host: localhost', 'Connection: Upgrade', 'Upgrade: websocket', '', ''].join('\r\n'))
  t.equal(statusLine(answer), 502)
  t.match(answer, /"kind":"Status"/)
  t.match(answer, /refused the connection/)
})

t.test('the guard applies to upgrades: a foreign Host never reaches the upstream', async (t) => {
  const { upgrades, proxy } = await throughProxy(t)
  const answer = await rawRequest(proxy.port, [`GET ${EXEC} HTTP/1.1`, 'Host: evil.example', 'Connection: Upgrade', 'Upgrade: websocket', '', ''].join('\r\n'))
  t.equal(statusLine(answer), 403)
  t.match(answer, /Host 'evil\.example' is not accepted/)
  await t.rejects(openWs(`ws://127.0.0.1:${proxy.port}${EXEC}`, { host: 'rebound.example:8001' }), { message: 'HTTP 403' })
  t.equal(upgrades.length, 0)
})

t.test('client closes first, or upstream closes first: no socket left open', async (t) => {
  const { sockets, proxy } = await throughProxy(t)

  const first = await openWs(`ws://127.0.0.1:${proxy.port}${EXEC}`)
  await echo(first, Buffer.from('x'))
  ;(first as unknown as { _socket: Socket })._socket.destroy() // the client vanishes without a close frame
  await until(() => sockets.size === 0 && proxy.app.tunnels.size === 0)
  t.pass('client gone: the upstream socket and the tunnel are closed')

  const second = await openWs(`ws://127.0.0.1:${proxy.port}${EXEC}`)
  const closed = new Promise<number>((resolve) => second.once('close', (code) => resolve(code)))
  second.send('bye')
  t.equal(await closed, 1000, 'the upstream\'s close frame reaches the client')
  await until(() => sockets.size === 0 && proxy.app.tunnels.size === 0)
  t.pass('upstream gone: both sockets closed')
})

t.test('a rotated certificate is used by the next tunnel while an old tunnel keeps going', async (t) => {
  const { upgrades, proxy, pki, files } = await throughProxy(t)
  const old = await openWs(`ws://127.0.0.1:${proxy.port}${EXEC}`)
  t.equal(upgrades[0]!.cn, 'demo-admin')
  const rotated = await pki.ca.issue({ commonName: 'rotated-admin', usage: 'client' })
  await writeFile(files.key, rotated.keyPem)
  await writeFile(files.cert, rotated.certPem)
  t.equal((await proxy.app.clusters.main.credentials.reload('test')).outcome, 'reloaded')
  const fresh = await openWs(`ws://127.0.0.1:${proxy.port}${EXEC}`)
  t.equal(upgrades.at(-1)!.cn, 'rotated-admin', 'the next tunnel uses the new certificate')
  t.same(await echo(old, Buffer.from('still here')), Buffer.from('still here'), 'the old tunnel keeps going')
  t.same(await echo(fresh, Buffer.from('new')), Buffer.from('new'))
  old.close()
  fresh.close()
})

t.test('a web page cannot open an exec WebSocket (WebSockets are not bound by CORS)', async (t) => {
  const { upgrades, proxy } = await throughProxy(t)
  await t.rejects(openWs(`ws://127.0.0.1:${proxy.port}${EXEC}`, { origin: 'https://evil.example' }), { message: 'HTTP 403' })
  const answer = await rawRequest(proxy.port, [`GET ${EXEC} HTTP/1.1`, `Host: 127.0.0.1:${proxy.port}`, 'Origin: https://evil.example',
    'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', '', ''].join('\r\n'))
  t.match(answer, /requests from web pages are refused \(Origin: https:\/\/evil\.example\)/)
  t.equal(upgrades.length, 0, 'nothing reached the upstream')
})

t.test('half-close: the client ends its side and still receives what the upstream sends back', async (t) => {
  const { proxy } = await throughProxy(t)
  const { socket, take } = await rawUpgrade(proxy.port, ['POST /api/v1/namespaces/default/pods/web/exec HTTP/1.1', 'Host: localhost', 'Connection: Upgrade', 'Upgrade: SPDY/3.1'], { allowHalfOpen: true })
  take()
  const ended = new Promise<void>((resolve) => socket.once('end', resolve))
  socket.end(Buffer.from('last words'))
  await ended
  t.equal(take().toString(), 'last words', 'the echo arrived after our FIN, then the upstream ended too')
  await until(() => proxy.app.tunnels.size === 0)
  socket.destroy()
})

t.test('a refused upgrade\'s answer larger than 1 MiB arrives whole; one cut short upstream looks cut, in either framing', async (t) => {
  const { proxy } = await throughProxy(t)
  const ask = (name: string) => rawRequest(proxy.port, [`GET /api/v1/namespaces/default/pods/${name}/exec HTTP/1.1`, 'Host: localhost',
    'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', '', ''].join('\r\n'), 10_000)
  const size = 3 * 1024 * 1024
  const whole = await ask('big-length')
  t.equal(statusLine(whole), 400)
  t.match(whole, new RegExp(`Content-Length: ${size}\r\n`, 'i'), 'the upstream\'s length, not a truncated one')
  t.equal(whole.length - whole.indexOf('\r\n\r\n') - 4, size, 'every byte of the body')
  const chunked = await ask('big-chunked')
  t.equal(statusLine(chunked), 400)
  t.match(chunked, /Transfer-Encoding: chunked\r\n/i)
  t.ok(chunked.endsWith('\r\n0\r\n\r\n'), 'a chunked body with its last chunk')
  const cutLength = await ask('big-length-cut')
  t.ok(cutLength.length - cutLength.indexOf('\r\n\r\n') - 4 < size, 'cut (length): fewer bytes than its Content-Length promises')
  t.match(cutLength, new RegExp(`Content-Length: ${size}\r\n`, 'i'))
  const cutChunked = await ask('big-chunked-cut')
  t.match(cutChunked, /Transfer-Encoding: chunked\r\n/i)
  t.notOk(cutChunked.endsWith('0\r\n\r\n'), 'cut (chunked): no last chunk')
})

t.test('an upgrade answered with 103 Early Hints, then 200: the 200 and its body reach the client', async (t) => {
  const { proxy } = await throughProxy(t)
  const answer = await rawRequest(proxy.port, ['GET /api/v1/namespaces/default/pods/early-hints/exec HTTP/1.1', 'Host: localhost',
    'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', '', ''].join('\r\n'))
  t.equal(statusLine(answer), 200)
  t.ok(answer.endsWith('{"ok":true}'), 'with its body')
})

t.test('an upgrade request with a body is refused at once (its bytes would be taken for the tunnel\'s, and the upstream would wait)', async (t) => {
  const { upgrades, proxy } = await throughProxy(t)
  // At once: about as long as the proxy takes to answer anything now (a busy machine slows both), not a wait for a body.
  const pace = await timed(() => rawRequest(proxy.port, 'GET /-/healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'))
  for (const framing of ['Content-Length: 5', 'Transfer-Encoding: chunked']) {
    const started = Date.now()
    const answer = await rawRequest(proxy.port, ['POST /api/v1/namespaces/default/pods/web/exec HTTP/1.1', 'Host: localhost', 'Connection: Upgrade',
      'Upgrade: SPDY/3.1', framing, '', framing.startsWith('Content') ? 'hello' : '5\r\nhello\r\n0\r\n\r\n'].join('\r\n'))
    t.equal(statusLine(answer), 400, framing)
    t.match(answer, /an Upgrade request must not carry a body/)
    t.ok(Date.now() - started < 2_000 + 20 * pace, `answered in ${Date.now() - started} ms (a health check took ${pace} ms)`)
  }
  t.equal(upgrades.length, 0, 'the upstream saw neither')
})

t.test('a refused upgrade lingering half-open is not counted as an open tunnel', async (t) => {
  const { proxy } = await throughProxy(t)
  const { socket, head } = await rawUpgrade(proxy.port, [`GET ${EXEC} HTTP/1.1`, 'Host: localhost', 'Origin: https://evil.example', 'Connection: Upgrade', 'Upgrade: websocket'], { allowHalfOpen: true })
  t.match(head, /^HTTP\/1\.1 403 /)
  t.equal(proxy.app.tunnels.size, 0, 'no tunnel counted')
  t.match(await (await fetch(`${proxy.url}/-/metrics`)).text(), /mtls_proxy_open_tunnels 0/)
  socket.destroy()
})

t.test('an upgrade given up on before the upstream answers is not counted as an upstream error', async (t) => {
  const { proxy } = await throughProxy(t)
  const errors = async () => (await proxy.app.metrics.registry.getSingleMetric('mtls_proxy_upstream_errors_total')!.get()).values.reduce((n, v) => n + v.value, 0)
  const before = await errors()
  const sockets = Array.from({ length: 5 }, () => {
    const socket = connect(proxy.port, '127.0.0.1')
    socket.on('error', () => socket.destroy())
    socket.write(['GET /api/v1/namespaces/default/pods/slow/exec HTTP/1.1', 'Host: localhost', 'Connection: Upgrade', 'Upgrade: websocket', '', ''].join('\r\n'))
    return socket
  })
  t.teardown(() => { for (const s of sockets) s.destroy() })
  await until(() => proxy.app.tunnels.size === 5)
  // what shutdown does after its grace period: the client side goes first
  proxy.app.tunnels.destroyAll()
  await until(() => proxy.logs.filter((l) => l.msg === 'request' && String(l.url).includes('/slow/')).length === 5)
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(await errors(), before, 'upstream_errors_total unchanged')
  t.notOk(proxy.logs.some((l) => l.msg === 'request' && String(l.url).includes('/slow/') && l.error), 'no error on the access lines')
})

t.test('a HEAD upgrade answered with a body: one answer reaches the client, never a second one after it', async (t) => {
  const { proxy } = await throughProxy(t)
  const answer = await rawRequest(proxy.port, ['HEAD /api/v1/namespaces/default/pods/big-length/exec HTTP/1.1', 'Host: localhost',
    'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', '', ''].join('\r\n'), 5_000)
  t.equal(statusLine(answer), 400)
  t.equal(answer.match(/HTTP\/1\.1 \d{3}/g)?.length, 1, 'one status line')
  t.notMatch(answer, /transfer-encoding: chunked/i, 'no body framing for HEAD')
})
