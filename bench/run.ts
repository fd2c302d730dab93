// npm run bench: mtls-proxy against the limit (a direct mTLS client) and its peers (nginx as mTLS
// reverse proxy, kubectl proxy), on one nginx mTLS upstream serving a 2 KB PodList, in one run.
// Load comes from autocannon in a process of its own; the contenders take turns over rounds so
// machine drift hits all alike; medians are reported, with ratios to nginx and kubectl proxy.
// Writes bench/results/latest.json. Bounded: about four minutes.
import { execFileSync, spawn } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { startDemoApiServer, startMtlsServer } from '../src/demo/api-server.js'
import { createDemoPki, writeClientFiles } from '../src/demo/pki.js'
import { Children, freePort, kubectl132, log, median, mtlsUpstreamConfig, nginxProxyConfig, podList as makePodList, sleep, startNginx as nginxIn, usage, waitFor, which } from './lib.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4)

interface Load { rps: number; mean: number; p50: number; p99: number; requests: number; errors: number; non2xx: number }
function load (url: string, connections: number, seconds: number, tls?: string[]): Promise<Load> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/load.ts'), url, String(connections), String(seconds), ...(tls ?? [])], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d) => { out += d })
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as Load) : reject(new Error(`load generator exited ${code}`))))
  })
}

const work = await mkdtemp(join(tmpdir(), 'mtls-proxy-bench-'))
const children = new Children()
const stopAll = () => children.stopAll()
const cleanup = async () => {
  stopAll()
  await rm(work, { recursive: true, force: true })
}
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)))
// Whatever happens, no server outlives the run (they would also hold its output open).
process.on('exit', stopAll)
process.on('unhandledRejection', (err) => { log(`bench failed: ${(err as Error).stack ?? String(err)}`); process.exit(1) })

const pki = await createDemoPki()
const files = await writeClientFiles(pki, work)
await writeFile(join(work, 'server.crt'), pki.server.certPem)
await writeFile(join(work, 'server.key'), pki.server.keyPem)
const podList = makePodList()
await writeFile(join(work, 'podlist.json'), podList)

const nginx = which('nginx')
const kubectl = kubectl132()
const missing: string[] = []
if (!nginx) missing.push('nginx (apt-get update && apt-get install -y nginx-light): the upstream falls back to Node, and nginx is not compared')
if (!kubectl) missing.push('kubectl 1.32 (a kubectl.1.32 beside the kubectl on PATH): kubectl proxy is not compared')
for (const m of missing) log(`skipping: ${m}`)

async function startNginx (name: string, server: string) {
  return children.add(await nginxIn(nginx!, join(work, name), server))
}

// The upstream: nginx with mutual TLS, answering every path with the PodList.
const upstreamPort = await freePort()
let upstreamUrl = `https://127.0.0.1:${upstreamPort}`
if (nginx) {
  await startNginx('upstream', mtlsUpstreamConfig(upstreamPort, files, podList))
} else {
  const server = await startMtlsServer({ clientCaPem: pki.ca.certPem, serverCert: pki.server, port: upstreamPort, handler: (_q, s) => { s.writeHead(200, { 'content-type': 'application/json' }); s.end(podList) } })
  upstreamUrl = server.url
}
const tls = [files.cacert, files.cert, files.key]
const { Agent } = await import('undici')
await waitFor(`${upstreamUrl}/api/v1/pods`, 15_000, new Agent({ connect: { ca: pki.ca.certPem, cert: pki.client.certPem, key: pki.client.keyPem } }))

interface Target { name: string; url: string; pid?: number; tls?: string[] }
const targets: Target[] = [{ name: 'direct mTLS', url: upstreamUrl, tls }]

const proxyPort = await freePort()
const started = Date.now()
const mtlsProxy = spawn(process.execPath, [join(ROOT, 'dist/cli.js'), '--upstream', upstreamUrl, '--cacert', files.cacert, '--cert', files.cert, '--key', files.key, '--port', String(proxyPort)], { stdio: ['ignore', 'ignore', 'inherit'], detached: true })
children.add(mtlsProxy)
await waitFor(`http://127.0.0.1:${proxyPort}/api/v1/namespaces/default/pods`)
const firstOkMs = Date.now() - started
targets.push({ name: 'mtls-proxy', url: `http://127.0.0.1:${proxyPort}`, pid: mtlsProxy.pid! })

if (nginx) {
  const port = await freePort()
  const child = await startNginx('proxy', nginxProxyConfig(port, upstreamPort, files))
  await waitFor(`http://127.0.0.1:${port}/api/v1/pods`)
  targets.push({ name: 'nginx', url: `http://127.0.0.1:${port}`, pid: child.pid! })
}
if (kubectl) {
  const port = await freePort()
  const kubeconfig = join(work, 'kubeconfig')
  await writeFile(kubeconfig, `apiVersion: v1\nkind: Config\ncurrent-context: b\nclusters: [{name: b, cluster: {server: "${upstreamUrl}", certificate-authority: ${files.cacert}, tls-server-name: localhost}}]\nusers: [{name: b, user: {client-certificate: ${files.cert}, client-key: ${files.key}}}]\ncontexts: [{name: b, context: {cluster: b, user: b}}]\n`)
  const child = spawn(kubectl, ['proxy', `--port=${port}`, `--kubeconfig=${kubeconfig}`], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, HOME: work }, detached: true })
  children.add(child)
  await waitFor(`http://127.0.0.1:${port}/api/v1/pods`)
  targets.push({ name: 'kubectl proxy', url: `http://127.0.0.1:${port}`, pid: child.pid! })
}

// Throughput and latency, the contenders taking turns each round.
const scenarios = [{ name: '50 connections', connections: 50 }, { name: '20 connections', connections: 20 }, { name: '1 connection', connections: 1 }]
const samples = new Map<string, { rps: number[]; mean: number[]; p50: number[]; p99: number[]; cpuPer1k: number[]; errors: number }>()
const idleRss = new Map<string, number>()
for (const t of targets) if (t.pid) idleRss.set(t.name, (await usage(t.pid)).rssKb / 1024)
log(`${targets.length} contenders, ${ROUNDS} rounds of ${scenarios.length} scenarios × ${SECONDS} s`)
for (let round = 1; round <= ROUNDS; round++) {
  for (const scenario of scenarios) {
    for (const t of round % 2 ? targets : [...targets].reverse()) {
      const before = t.pid ? await usage(t.pid) : undefined
      const r = await load(`${t.url}/api/v1/namespaces/default/pods`, scenario.connections, SECONDS, t.tls)
      const after = t.pid ? await usage(t.pid) : undefined
      const key = `${t.name}|${scenario.name}`
      const s = samples.get(key) ?? { rps: [], mean: [], p50: [], p99: [], cpuPer1k: [], errors: 0 }
      s.rps.push(r.rps)
      s.mean.push(r.mean)
      s.p50.push(r.p50)
      s.p99.push(r.p99)
      s.errors += r.errors + r.non2xx
      if (before && after) s.cpuPer1k.push(((after.cpu - before.cpu) * 1000) / (r.requests / 1000))
      samples.set(key, s)
      log(`round ${round} ${scenario.name.padEnd(15)} ${t.name.padEnd(14)} ${Math.round(r.rps)} req/s p50 ${r.p50} ms p99 ${r.p99} ms`)
    }
  }
}

// 200 sequential curl calls: a new connection (and TLS handshake) each time directly, one pooled through the proxy.
async function curls (args: string[]): Promise<number> {
  const t0 = performance.now()
  for (let i = 0; i < 200; i++) execFileSync('curl', ['-sf', '-o', '/dev/null', ...args])
  return performance.now() - t0
}
const curlDirectMs = await curls(['--cacert', files.cacert, '--cert', files.cert, '--key', files.key, `${upstreamUrl}/api/v1/namespaces/default/pods`])
const curlProxyMs = await curls([`http://127.0.0.1:${proxyPort}/api/v1/namespaces/default/pods`])
// The same through nginx: what curl's own start-up leaves for any proxy to win.
const nginxTarget = targets.find((t) => t.name === 'nginx')
const curlNginxMs = nginxTarget ? await curls([`${nginxTarget.url}/api/v1/namespaces/default/pods`]) : NaN
log(`200 curl calls: direct ${Math.round(curlDirectMs)} ms, through mtls-proxy ${Math.round(curlProxyMs)} ms, through nginx ${Math.round(curlNginxMs)} ms`)

// Open watches and a 1 GB upload need an upstream that streams: the demo API server, behind a second mtls-proxy.
const demo = await startDemoApiServer(pki)
const sink = await startMtlsServer({ clientCaPem: pki.ca.certPem, serverCert: pki.server, handler: (req, res) => { req.resume(); req.on('end', () => res.end('{}')) } })
async function proxyFor (upstream: string): Promise<{ port: number; pid: number }> {
  const port = await freePort()
  const child = spawn(process.execPath, [join(ROOT, 'dist/cli.js'), '--upstream', upstream, '--cacert', files.cacert, '--cert', files.cert, '--key', files.key, '--port', String(port), '--no-access-log'], { stdio: ['ignore', 'ignore', 'inherit'], detached: true })
  children.add(child)
  await waitFor(`http://127.0.0.1:${port}/-/healthz`)
  return { port, pid: child.pid! }
}
const watchProxy = await proxyFor(demo.url)
const watchRssBefore = (await usage(watchProxy.pid)).rssKb / 1024
const { Agent: WatchAgent } = await import('undici')
const watchAgent = new WatchAgent({ connections: null })
const watches = await Promise.all(Array.from({ length: 1000 }, async () => {
  const res = await request(`http://127.0.0.1:${watchProxy.port}/api/v1/namespaces/default/pods?watch=1`, { dispatcher: watchAgent })
  res.body.on('data', () => { /* events */ })
  return res
}))
await sleep(1000)
const watchRssAfter = (await usage(watchProxy.pid)).rssKb / 1024
log(`1000 open watches: RSS ${watchRssBefore.toFixed(1)} → ${watchRssAfter.toFixed(1)} MB (${demo.openWatches()} open upstream)`)
for (const w of watches) w.body.destroy()
await watchAgent.destroy()

const uploadProxy = await proxyFor(sink.url)
const uploadRssBefore = (await usage(uploadProxy.pid)).rssKb / 1024
let uploadRssMax = uploadRssBefore
const sampler = setInterval(() => void usage(uploadProxy.pid).then((u) => { uploadRssMax = Math.max(uploadRssMax, u.rssKb / 1024) }), 100)
const chunk = Buffer.alloc(1024 * 1024, 'x')
const uploadStart = performance.now()
await request(`http://127.0.0.1:${uploadProxy.port}/api/v1/namespaces/default/configmaps`, {
  method: 'POST',
  headers: { 'content-type': 'application/octet-stream' },
  body: Readable.from((function * () { for (let i = 0; i < 1024; i++) yield chunk })()),
}).then((r) => r.body.dump())
const uploadSeconds = (performance.now() - uploadStart) / 1000
clearInterval(sampler)
log(`1 GB upload: ${uploadSeconds.toFixed(1)} s, RSS ${uploadRssBefore.toFixed(1)} → max ${uploadRssMax.toFixed(1)} MB`)

// Rotation: a new certificate on disk until the next request goes out with it.
const rotated = await pki.ca.issue({ commonName: 'bench-rotated', usage: 'client' })
const changed = performance.now()
await writeFile(files.cert, rotated.certPem)
await writeFile(files.key, rotated.keyPem)
for (;;) {
  const res = await request(`http://127.0.0.1:${proxyPort}/-/status`)
  if (((await res.body.json()) as { identity: string }).identity.includes('bench-rotated')) break
  await sleep(5)
}
const rotationMs = performance.now() - changed

// The table.
const names = targets.map((t) => t.name)
const med = (name: string, scenario: string, field: 'rps' | 'mean' | 'p50' | 'p99' | 'cpuPer1k') => median(samples.get(`${name}|${scenario}`)?.[field] ?? [])
const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `${(a / b).toFixed(2)}×` : '–')
const rows: string[][] = [['scenario', 'metric', ...names, 'mtls-proxy / nginx', 'mtls-proxy / kubectl proxy']]
for (const scenario of scenarios.map((s) => s.name)) {
  for (const field of ['rps', 'p50', 'p99', 'cpuPer1k'] as const) {
    if (field === 'cpuPer1k' && scenario !== '50 connections') continue
    const label = { rps: 'requests/s', mean: 'mean ms', p50: 'p50 ms', p99: 'p99 ms', cpuPer1k: 'CPU ms per 1,000 requests' }[field]
    const values = names.map((n) => med(n, scenario, field))
    rows.push([scenario, label, ...values.map((v) => (Number.isFinite(v) ? (field === 'rps' ? String(Math.round(v)) : v.toFixed(0)) : '–')),
      ratio(med('mtls-proxy', scenario, field), med('nginx', scenario, field)), ratio(med('mtls-proxy', scenario, field), med('kubectl proxy', scenario, field))])
  }
}
rows.push(['idle', 'RSS MB', ...names.map((n) => idleRss.get(n)?.toFixed(1) ?? '–'), ratio(idleRss.get('mtls-proxy')!, idleRss.get('nginx')!), ratio(idleRss.get('mtls-proxy')!, idleRss.get('kubectl proxy')!)])
// One connection is a closed loop: each request's round trip is 1/rate. (autocannon's percentiles
// are whole milliseconds and its mean is not a round trip, too coarse to show a fraction of a ms.)
const roundTrip = (name: string) => 1000 / med(name, '1 connection', 'rps')
const p50Added = roundTrip('mtls-proxy') - roundTrip('direct mTLS')
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
const table = rows.map((r) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`)
table.splice(1, 0, `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`)
const extra = [
  `1 connection, round trip: ${targets.map((t) => `${t.name} ${roundTrip(t.name).toFixed(3)} ms`).join(', ')}; added by mtls-proxy over the direct client: ${p50Added.toFixed(3)} ms`,
  `200 sequential curl calls: direct ${Math.round(curlDirectMs)} ms, through mtls-proxy ${Math.round(curlProxyMs)} ms (${(curlDirectMs / curlProxyMs).toFixed(2)}× faster)` +
    (nginxTarget ? `, through nginx ${Math.round(curlNginxMs)} ms (${(curlDirectMs / curlNginxMs).toFixed(2)}×)` : ''),
  `1,000 open watches: RSS +${(watchRssAfter - watchRssBefore).toFixed(1)} MB`,
  `1 GB upload: RSS ${uploadRssBefore.toFixed(1)} MB → max ${uploadRssMax.toFixed(1)} MB, ${(1024 / uploadSeconds).toFixed(0)} MB/s`,
  `start to first proxied 200: ${firstOkMs} ms; certificate change to new identity in use: ${Math.round(rotationMs)} ms`,
]
process.stdout.write(`${table.join('\n')}\n\n${extra.map((e) => `- ${e}`).join('\n')}\n`)
const node = process.version
await mkdir(join(ROOT, 'bench/results'), { recursive: true })
await writeFile(join(ROOT, 'bench/results/latest.json'), JSON.stringify({
  date: new Date().toISOString(),
  node,
  rounds: ROUNDS,
  seconds: SECONDS,
  skipped: missing,
  samples: Object.fromEntries(samples),
  idleRssMb: Object.fromEntries(idleRss),
  p50AddedMs: p50Added,
  curl200: { directMs: curlDirectMs, proxyMs: curlProxyMs, nginxMs: curlNginxMs },
  watches1000RssMb: { before: watchRssBefore, after: watchRssAfter },
  upload1GbRssMb: { before: uploadRssBefore, max: uploadRssMax, seconds: uploadSeconds },
  firstProxied200Ms: firstOkMs,
  rotationMs,
}, null, 2))
await demo.close()
await sink.close()
await cleanup()
process.exit(0)
