// npm run bench: mtls-proxy against the limit (a direct mTLS client) and its peers (nginx as mTLS
// reverse proxy, kubectl proxy), on one nginx mTLS upstream serving a 2 KB PodList. Load comes
// from autocannon in a process of its own; the contenders take turns over rounds so machine drift
// hits all alike; medians are reported, with ratios to nginx and kubectl proxy. The whole run is
// made once on this machine's Node.js and once on the image's (when that is another major), each
// with its own ratios. Writes bench/results/latest.json. Bounded: about four minutes per Node.js.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startDemoApiServer, startMtlsServer } from '../src/demo/api-server.js'
import { startContenders, startMtlsProxy, type Bench } from './contenders.js'
import { benchFiles, benchNodes, Children, findKubectl, freePort, IDLE_AFTER_MS, log, podList, ROOT, sleep, startNginxUpstream, usage, which } from './lib.js'
import { curls, rotation, throughput, uploadMemory, watchMemory } from './measure.js'
import { medianOf, table } from './report.js'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4)

const work = await mkdtemp(join(tmpdir(), 'mtls-proxy-bench-'))
const children = new Children()
const cleanup = async () => {
  children.stopAll()
  await rm(work, { recursive: true, force: true })
}
process.on('SIGINT', () => { void cleanup().then(() => process.exit(130)) })
// Whatever happens, no server outlives the run (they would also hold its output open).
process.on('exit', () => children.stopAll())
process.on('unhandledRejection', (err) => { log(`bench failed: ${(err as Error).stack ?? String(err)}`); process.exit(1) })

const { pki, files } = await benchFiles(work)
const body = podList()
const nginx = which('nginx')
const kubectl = findKubectl()
const missing: string[] = []
if (!nginx) missing.push('nginx (apt-get update && apt-get install -y nginx-light): the upstream falls back to Node, and nginx is not compared')
if (!kubectl) missing.push('kubectl 1.32 (a kubectl.1.32 beside the kubectl on PATH): kubectl proxy is not compared')
for (const m of missing) log(`skipping: ${m}`)

// The upstream: nginx with mutual TLS answering every path with the PodList (Node's, without nginx).
let upstream: Bench['upstream']
if (nginx) {
  const started = await startNginxUpstream(nginx, work, pki, files, body)
  children.add(started.child)
  upstream = started
} else {
  const port = await freePort()
  const server = await startMtlsServer({
    clientCaPem: pki.ca.certPem, serverCert: pki.server, port, handler: (_q, s) => { s.writeHead(200, { 'content-type': 'application/json' }); s.end(body) },
  })
  upstream = { url: server.url, port }
}

/** Everything, with the proxy on one Node.js binary: the table, the extra figures, and what goes in the JSON. */
async function benchOn (node: string) {
  const own = new Children()
  const bench: Bench = { node, work, files, children: own, upstream, nginx, kubectl }
  const { targets, firstOkMs, firstOkAt } = await startContenders(bench)
  const ours = targets.find((t) => t.name === 'mtls-proxy')!
  const idleRss = new Map<string, number>()
  const idlePrivate = new Map<string, number>()
  await sleep(firstOkAt + IDLE_AFTER_MS - Date.now())
  for (const t of targets) {
    if (!t.pid) continue
    const u = await usage(t.pid)
    idleRss.set(t.name, u.rssKb / 1024)
    idlePrivate.set(t.name, u.anonKb / 1024)
  }
  const samples = await throughput(targets, ROUNDS, SECONDS)

  const pods = '/api/v1/namespaces/default/pods'
  const curlDirectMs = curls(['--cacert', files.cacert, '--cert', files.cert, '--key', files.key, `${upstream.url}${pods}`])
  const curlProxyMs = curls([`${ours.url}${pods}`])
  // The same through nginx: what curl's own start-up leaves for any proxy to win.
  const nginxTarget = targets.find((t) => t.name === 'nginx')
  const curlNginxMs = nginxTarget ? curls([`${nginxTarget.url}${pods}`]) : NaN
  log(`200 curl calls: direct ${Math.round(curlDirectMs)} ms, through mtls-proxy ${Math.round(curlProxyMs)} ms, through nginx ${Math.round(curlNginxMs)} ms`)

  // Open watches and a 1 GB upload need an upstream that streams: the demo API server, behind a second mtls-proxy.
  const demo = await startDemoApiServer(pki)
  const sink = await startMtlsServer({ clientCaPem: pki.ca.certPem, serverCert: pki.server, handler: (req, res) => { req.resume(); req.on('end', () => res.end('{}')) } })
  const watchRss = await watchMemory(await startMtlsProxy(bench, demo.url, ['--no-access-log']), () => demo.openWatches())
  const uploadRss = await uploadMemory(await startMtlsProxy(bench, sink.url, ['--no-access-log']))
  const rotationMs = await rotation(bench, pki, ours.url)
  own.stopAll()
  await demo.close()
  await sink.close()

  // One connection is a closed loop: each request's round trip is 1/rate. (autocannon's percentiles
  // are whole milliseconds and its mean is not a round trip, too coarse to show a fraction of a ms.)
  const med = medianOf(samples)
  const roundTrip = (name: string) => 1000 / med(name, '1 connection', 'rps')
  const p50Added = roundTrip('mtls-proxy') - roundTrip('direct mTLS')
  const extra = [
    `1 connection, round trip: ${targets.map((t) => `${t.name} ${roundTrip(t.name).toFixed(3)} ms`).join(', ')}; ` +
      `added by mtls-proxy over the direct client: ${p50Added.toFixed(3)} ms`,
    `200 sequential curl calls: direct ${Math.round(curlDirectMs)} ms, through mtls-proxy ${Math.round(curlProxyMs)} ms ` +
      `(${(curlDirectMs / curlProxyMs).toFixed(2)}× faster)` +
      (nginxTarget ? `, through nginx ${Math.round(curlNginxMs)} ms (${(curlDirectMs / curlNginxMs).toFixed(2)}×)` : ''),
    `1,000 open watches: RSS +${(watchRss.after - watchRss.before).toFixed(1)} MB`,
    `1 GB upload: RSS ${uploadRss.before.toFixed(1)} MB → max ${uploadRss.max.toFixed(1)} MB, ${(1024 / uploadRss.seconds).toFixed(0)} MB/s`,
    `start to first proxied 200: ${firstOkMs} ms; certificate change to new identity in use: ${Math.round(rotationMs)} ms`,
    'idle private memory (RssAnon, RSS without the executable\'s and libraries\' pages): ' +
      [...idlePrivate].map(([name, mb]) => `${name} ${mb.toFixed(1)} MB`).join(', '),
  ]
  return {
    text: `${table(targets, samples, idleRss)}\n\n${extra.map((e) => `- ${e}`).join('\n')}\n`,
    json: {
      samples: Object.fromEntries(samples),
      idleRssMb: Object.fromEntries(idleRss),
      idlePrivateMb: Object.fromEntries(idlePrivate),
      p50AddedMs: p50Added,
      curl200: { directMs: curlDirectMs, proxyMs: curlProxyMs, nginxMs: curlNginxMs },
      watches1000RssMb: watchRss,
      upload1GbRssMb: uploadRss,
      firstProxied200Ms: firstOkMs,
      rotationMs,
    },
  }
}

const runs: Record<string, unknown> = {}
for (const { label, bin } of await benchNodes()) {
  log(`mtls-proxy on ${label}`)
  const result = await benchOn(bin)
  process.stdout.write(`\n### mtls-proxy on ${label}\n\n${result.text}`)
  runs[label] = result.json
}
await mkdir(join(ROOT, 'bench/results'), { recursive: true })
await writeFile(join(ROOT, 'bench/results/latest.json'), JSON.stringify({
  date: new Date().toISOString(),
  node: process.version,
  rounds: ROUNDS,
  seconds: SECONDS,
  skipped: missing,
  runs,
}, null, 2))
await cleanup()
process.exit(0)
