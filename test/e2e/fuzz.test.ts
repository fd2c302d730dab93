// A bounded fuzz run: random and mutated HTTP/1.1 requests against a running proxy (its own
// process), a third of them cut by a TCP reset (RST) at a random point: part-way through sending,
// or a moment after. It must stay up, keep its memory bounded, and still serve a normal request after.
import { readFile } from 'node:fs/promises'
import { connect } from 'node:net'
import t from 'tap'
import { clientFlags } from '../helpers/proxy.js'
import { pkiWithFiles } from '../helpers/pki.js'
import { echoHandler } from '../helpers/upstream.js'
import { startTunnelUpstream } from '../helpers/tunnel-upstream.js'
import { startCli } from '../helpers/cli.js'
import { get } from '../helpers/http.js'

const COUNT = 3000
const CONCURRENCY = 50
const SEED = 20261129

// mulberry32: a small seeded generator, so a failing run can be replayed.
function prng (seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const SEEDS = [
  'GET /api/v1/namespaces/default/pods?watch=1 HTTP/1.1\r\nHost: localhost\r\n\r\n',
  'POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}',
  'PATCH /api/v1/namespaces/default/pods/x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nContent-Type: application/merge-patch+json\r\n\r\n2\r\n{}\r\n0\r\n\r\n',
  'GET /api/v1/namespaces/default/pods/web/exec?command=sh HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
  'GET http://localhost/version HTTP/1.1\r\nHost: localhost\r\n\r\n',
  'CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n',
  'POST /api/v1/namespaces/default/pods/web/exec HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n\x80\x03\x00\x01',
  'GET /api/v1/namespaces/default/pods/web/exec HTTP/1.1\r\nHost: localhost\r\nOrigin: https://evil.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
  'GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n',
  'POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\nabc',
]
const TOKENS = ['\r\n', '\r', '\n', ':', ' ', '\t', '\0', '%', '%2e%2e/', '//', '..', 'Host: evil', 'Content-Length: 99', 'Transfer-Encoding: chunked', 'Origin: null', '\u00ff', '\u{1F600}', 'HTTP/1.0', 'HTTP/9.9', '?', '#', '*']

function mutate (random: () => number): Buffer {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!
  let text = pick(SEEDS)
  const edits = 1 + Math.floor(random() * 4)
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(random() * text.length)
    switch (Math.floor(random() * 6)) {
      case 0: text = text.slice(0, at) + pick(TOKENS) + text.slice(at); break
      case 1: text = text.slice(0, at) + text.slice(at + 1 + Math.floor(random() * 8)); break
      case 2: text = text.slice(0, at); break
      case 3: text = text.slice(0, at) + 'A'.repeat(Math.floor(random() * 20_000)) + text.slice(at); break
      case 4: text = text.replace('\r\n\r\n', `\r\nX-Dup: a\r\nX-Dup: b\r\n${pick(TOKENS)}\r\n\r\n`); break
      default: {
        const bytes = Buffer.from(text, 'latin1')
        for (let j = 0; j < 3; j++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256)
        text = bytes.toString('latin1')
      }
    }
  }
  return Buffer.from(text, 'latin1')
}

/** How a request ends: the client closes normally, or resets after `at` bytes, or `afterMs` after sending all. */
type Ending = { reset: false } | { reset: true; at: number; afterMs: number }

function ending (random: () => number, size: number): Ending {
  if (random() >= 1 / 3) return { reset: false }
  return random() < 0.5
    ? { reset: true, at: Math.floor(random() * size), afterMs: 0 }
    : { reset: true, at: size, afterMs: Math.floor(random() * 20) }
}

function send (port: number, bytes: Buffer, end: Ending): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    const done = () => { clearTimeout(timer); socket.destroy(); resolve() }
    // Incomplete requests would wait for the headers timeout; the fuzzer moves on after a short while.
    const timer = setTimeout(done, 300)
    socket.on('connect', () => {
      if (!end.reset) {
        socket.end(bytes)
        return
      }
      socket.write(bytes.subarray(0, end.at))
      setTimeout(() => { socket.resetAndDestroy(); done() }, end.afterMs)
    })
    socket.on('data', () => { /* read and drop */ })
    socket.on('close', done)
    socket.on('error', done)
  })
}

async function rssKb (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
}

t.test(`${COUNT} fuzzed requests: the proxy stays up, memory bounded, then serves normally`, async (t) => {
  const { pki, files } = await pkiWithFiles(t)
  const big = Buffer.alloc(1024 * 1024, 'b')
  const { upstream } = await startTunnelUpstream(t, pki, (req, res) => {
    if (req.url === '/big') {
      res.writeHead(200)
      res.end(big)
      return
    }
    echoHandler(req, res)
  })
  const proxy = await startCli(t, [...clientFlags(upstream.url, files), '--no-access-log'])
  const pid = proxy.child.pid!
  t.equal((await get(`${proxy.url}/version`)).status, 200)
  const before = await rssKb(pid)
  const random = prng(SEED)
  const requests = Array.from({ length: COUNT }, () => {
    const bytes = mutate(random)
    return { bytes, end: ending(random, bytes.length) }
  })
  for (let i = 0; i < requests.length; i += CONCURRENCY) {
    await Promise.all(requests.slice(i, i + CONCURRENCY).map((r) => send(proxy.port, r.bytes, r.end)))
  }
  t.ok(requests.filter((r) => r.end.reset).length > COUNT / 4, `${requests.filter((r) => r.end.reset).length} of them ended by a reset`)
  t.equal(proxy.child.exitCode, null, 'still running')
  t.notOk(proxy.logs().some((l) => (l.level as number) >= 50), 'no error-level line')
  const after = await rssKb(pid)
  t.ok(after - before < 100 * 1024, `RSS grew by ${Math.round((after - before) / 1024)} MB (from ${Math.round(before / 1024)} MB), under 100 MB`)
  const res = await get(`${proxy.url}/api/v1/namespaces/default/pods?x=1`)
  t.equal(res.status, 200, 'a normal request still succeeds')
  t.equal(res.json().url, '/api/v1/namespaces/default/pods?x=1')
  t.equal((await get(`${proxy.url}/-/healthz`)).status, 200)
  proxy.child.kill('SIGTERM')
  t.equal((await proxy.exited).code, 0, 'and stops cleanly')
})
