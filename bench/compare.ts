// npm run bench:compare -- REV [REV …]: what a change bought, in CPU per request.
// Each revision (a commit, `work` for the working tree, `floor` for bench/floor.ts; `nginx` adds
// nginx as a proxy) is built into a folder of its own and run as the CLI against one nginx mTLS
// upstream serving a 2 KB PodList. `REV@ARGS` runs it with more arguments, comma-separated
// (`work@--workers=2`), those written `node:FLAG` going to Node.js (`work@node:--liftoff-only`)
// and `env:NAME=VALUE` to its environment; `nginx@N` runs nginx with N worker processes. Load
// comes from wrk (or autocannon when wrk is missing) in a process of its own; the revisions take
// turns over rounds so machine drift hits all alike, and the table gives medians: CPU-µs per
// request (the figure that noise moves least) and requests/s.
// BENCH_ROUNDS (5), BENCH_SECONDS (3), BENCH_CONNECTIONS (50).
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  benchFiles, buildRevision, Children, freePort, log, median, nginxProxyConfig, podList, proxyArgs, revisionSpec, ROOT, runLoad,
  sleep, startNginx, startNginxUpstream, usage, waitFor, which,
} from './lib.js'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50)
const revisions = process.argv.slice(2)
if (revisions.length === 0) {
  log('usage: npm run bench:compare -- REV [REV …]   (a commit, a branch, `work` for the working tree, `floor` for bench/floor.ts, `nginx`)')
  process.exit(2)
}
const nginx = which('nginx')
if (!nginx) {
  log('nginx is needed as the upstream: apt-get update && apt-get install -y nginx-light')
  process.exit(2)
}
const wrk = which('wrk')
if (!wrk) log('wrk not found (apt-get install -y wrk): using autocannon, which costs more CPU beside the proxy')

const work = await mkdtemp(join(tmpdir(), 'mtls-proxy-compare-'))
const children = new Children()
process.on('exit', () => children.stopAll())
process.on('SIGINT', () => process.exit(130))

/** dist/cli.js of a revision; floor and nginx are not built. */
async function build (spec: string, i: number): Promise<string> {
  const rev = spec.split('@')[0]!
  if (rev === 'floor') return join(ROOT, 'bench/floor.ts')
  if (rev === 'nginx') return 'nginx'
  return buildRevision(rev, join(work, `rev-${i}`))
}

const { pki, files } = await benchFiles(work)
const upstream = await startNginxUpstream(nginx, work, pki, files, podList())
children.add(upstream.child)

// The same revision twice (`work`, `work@--workers=2`) is built once.
const built = new Map<string, Promise<string>>()
const builds = await Promise.all(revisions.map(async (rev, i) => {
  const { base, args, nodeFlags, env } = revisionSpec(rev)
  if (!built.has(base)) built.set(base, build(base, i))
  return { rev, cli: await built.get(base)!, args, nodeFlags, env }
}))
const extra = (process.env.BENCH_PROXY_ARGS ?? '').split(' ').filter(Boolean)
const results = new Map<string, { cpuUs: number[]; rps: number[]; loadCpu: number[] }>(
  revisions.map((r) => [r, { cpuUs: [], rps: [], loadCpu: [] }]))
log(`${revisions.length} revisions, ${ROUNDS} rounds of ${SECONDS} s at ${CONNECTIONS} connections`)
for (let round = 1; round <= ROUNDS; round++) {
  for (const { rev, cli, args, nodeFlags, env } of round % 2 ? builds : [...builds].reverse()) {
    const port = await freePort()
    const child = children.add(cli === 'nginx'
      ? await startNginx(nginx, join(work, `nginx-${round}`), nginxProxyConfig(port, upstream.port, files), Number(args[0] ?? 1))
      : spawn(process.execPath, [...nodeFlags, ...(cli.endsWith('.ts') ? ['--import', 'tsx'] : []), cli, ...proxyArgs(upstream.url, files, port), ...extra, ...args],
        { stdio: ['ignore', 'ignore', 'inherit'], detached: true, env: { ...process.env, ...env } }))
    const url = `http://127.0.0.1:${port}/api/v1/namespaces/default/pods`
    await waitFor(url)
    // --workers: every worker serving, not just the first
    if (args.some((a) => a.startsWith('--workers'))) await sleep(2_000)
    const load = () => runLoad(url, { connections: CONNECTIONS, seconds: SECONDS, wrk })
    await load() // warm-up: JIT, pool
    const before = await usage(child.pid!)
    const r = await load()
    const after = await usage(child.pid!)
    process.kill(-child.pid!, 'SIGKILL')
    const cpuUs = ((after.cpu - before.cpu) * 1e6) / r.requests
    results.get(rev)!.cpuUs.push(cpuUs)
    results.get(rev)!.rps.push(r.rps)
    results.get(rev)!.loadCpu.push(r.loadCpu / SECONDS)
    log(`round ${round} ${rev.padEnd(12)} ${Math.round(r.rps)} req/s, ${Math.round(cpuUs)} CPU-µs per request, ` +
      `load generator ${Math.round((r.loadCpu / SECONDS) * 100)} % of a core`)
  }
}
const base = results.get(revisions[0]!)!
const firstRps = median(base.rps)
// Each round's revisions run back to back, so a ratio within one round cancels most of this
// machine's drift (other tenants can double a round's CPU per request); its median is the figure to quote.
const pairedRatio = (r: { cpuUs: number[] }) => median(r.cpuUs.map((us, i) => us / base.cpuUs[i]!))
process.stdout.write(`| revision | CPU-µs per request (median) | vs ${revisions[0]}, per round (median) | fastest round, µs | ` +
  `requests/s (median) | vs ${revisions[0]} | load generator, % of a core |\n|---|---|---|---|---|---|---|\n`)
for (const rev of revisions) {
  const r = results.get(rev)!
  process.stdout.write(`| ${rev} | ${Math.round(median(r.cpuUs))} | ${pairedRatio(r).toFixed(2)}× | ${Math.round(Math.min(...r.cpuUs))} | ` +
    `${Math.round(median(r.rps))} | ${(median(r.rps) / firstRps).toFixed(2)}× | ${Math.round(median(r.loadCpu) * 100)} |\n`)
}
children.stopAll()
await rm(work, { recursive: true, force: true })
process.exit(0)
