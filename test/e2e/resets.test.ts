// Clients that reset the connection (RST) mid-request, on every way in and every raw socket the
// proxy writes to: the process must never exit, and must serve normally afterwards.
import t from 'tap'
import { clientFlags } from '../helpers/proxy.js'
import { pkiWithFiles } from '../helpers/pki.js'
import { startTunnelUpstream } from '../helpers/tunnel-upstream.js'
import { startCli } from '../helpers/cli.js'
import { get, rawRequest, statusLine } from '../helpers/http.js'
import { sendThenReset, type ResetPlan } from '../helpers/reset.js'

const BIG = Buffer.alloc(4 * 1024 * 1024, 'x')
const { pki, files } = await pkiWithFiles(t)
const { upstream } = await startTunnelUpstream(t, pki, (req, res) => {
  res.writeHead(200, { 'content-type': 'application/octet-stream' })
  res.end(req.url?.startsWith('/big') ? BIG : '{}')
})
const proxy = await startCli(t, [...clientFlags(upstream.url, files), '--status-address', '127.0.0.1:0'])
const statusPort = Number(new URL(proxy.logs().find((l) => typeof l.status === 'string')!.status as string).port)

const ws = (path: string, ...extra: string[]) => [`GET ${path} HTTP/1.1`, 'Host: localhost', 'Connection: Upgrade', 'Upgrade: websocket',
  'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Protocol: v5.channel.k8s.io', ...extra, '', ''].join('\r\n')
const spdy = ['POST /api/v1/namespaces/default/pods/web/exec HTTP/1.1', 'Host: localhost', 'Connection: Upgrade', 'Upgrade: SPDY/3.1', '', ''].join('\r\n')

// [way in, port, what is sent, wait for the answer before resetting]
const paths: Array<[string, number, Omit<ResetPlan, 'delayMs'>]> = [
  ['CONNECT (refused on the raw socket)', proxy.port, { send: 'CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n' }],
  ['an upgrade the guard refuses', proxy.port, { send: ws('/api/v1/namespaces/default/pods/web/exec', 'Origin: https://evil.example') }],
  ['an upgrade the upstream refuses (its answer relayed)', proxy.port, { send: ws('/api/v1/namespaces/default/pods/forbidden/exec') }],
  ['an upgrade whose upstream hangs up (our 502)', proxy.port, { send: ws('/api/v1/namespaces/default/pods/hangup/exec') }],
  ['an open tunnel, mid-stream', proxy.port, { send: spdy, afterAnswer: true, then: Buffer.alloc(1024 * 1024, 1) }],
  ['an ordinary request, mid-response', proxy.port, { send: 'GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n' }],
  ['an ordinary request, after the first bytes', proxy.port, { send: 'GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n', afterAnswer: true }],
  ['the status listener, mid-response', statusPort, { send: 'GET /-/metrics HTTP/1.1\r\nHost: localhost\r\n\r\n' }],
]
const DELAYS_MS = [0, 0, 1, 2, 5]
const ROUNDS = 5

for (const [name, port, plan] of paths) {
  t.test(`${name}: ${DELAYS_MS.length * ROUNDS} clients reset at once or within 5 ms; the proxy keeps serving`, async (t) => {
    for (let round = 0; round < ROUNDS; round++) {
      await Promise.all(DELAYS_MS.map((delayMs) => sendThenReset(port, { ...plan, delayMs })))
    }
    // A reset that made the process exit would show here, or in the next request.
    await new Promise((resolve) => setTimeout(resolve, 50))
    t.equal(proxy.child.exitCode, null, 'still running')
    t.equal((await get(`${proxy.url}/-/healthz`)).status, 200, '/-/healthz answers')
    t.equal((await get(`${proxy.url}/api/v1/pods`)).status, 200, 'a request is forwarded')
    t.equal(statusLine(await rawRequest(proxy.port, spdy.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n'), 500)), 101, 'a tunnel opens')
    t.equal((await get(`http://127.0.0.1:${statusPort}/-/readyz`)).status, 200, 'the status listener answers')
  })
}

t.test('no fatal error was logged, and SIGTERM still stops it cleanly', async (t) => {
  t.notOk(proxy.logs().some((l) => l.level === 50 || l.level === 60), 'no error-level line')
  proxy.child.kill('SIGTERM')
  t.equal((await proxy.exited).code, 0)
})
