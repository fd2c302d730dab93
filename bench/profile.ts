// npm run bench:profile -- REV [REV …]: where each revision's CPU goes per request, beside the
// floor's. Each revision (a commit, `work`, `floor`, or `REV@ARGS` as in bench:compare) is built
// unminified, so the bundle's module comments name each function's package, and run under the
// same wrk load as bench:compare against the nginx upstream. A V8 CPU profile covers the measured
// run only (an inspector session opened by a preload, started after the warm-up, written on
// SIGINT), and its self time is divided by the requests served: a table by package or Node.js
// subsystem, then the busiest functions. Sampling adds its own cost and this machine's noise lands
// on whatever was running; read the figures as shares, and compare revisions within one run.
// BENCH_ROUNDS (3), BENCH_SECONDS (5 per round), BENCH_CONNECTIONS (50), BENCH_TOP (25 functions).
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  benchFiles, buildSpecs, Children, freePort, log, podList, proxyArgs, revisionSpec, ROOT, runLoad, startNginxUpstream, waitFor, which,
} from './lib.js'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50)
const TOP = Number(process.env.BENCH_TOP ?? 25)
const revisions = process.argv.slice(2)
const nginx = which('nginx')
const wrk = which('wrk')
if (revisions.length === 0 || !nginx || !wrk) {
  log('usage: npm run bench:profile -- REV [REV …]   (a commit, `work`, `floor`); needs nginx and wrk (apt-get install -y nginx-light wrk)')
  process.exit(2)
}

interface Profile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>
  samples: number[]
  timeDeltas: number[]
}

// Opened in the profiled process before its own code: the profile starts on SIGWINCH (which
// nothing else there listens to) and is written on SIGINT, before the process's own handlers run
// (an in-process inspector session calls back synchronously, so the file is written by then).
const PRELOAD = `
const inspector = require('node:inspector')
const session = new inspector.Session()
session.connect()
process.on('SIGWINCH', () => session.post('Profiler.enable', () =>
  session.post('Profiler.setSamplingInterval', { interval: 200 }, () => session.post('Profiler.start'))))
process.prependOnceListener('SIGINT', () => {
  session.post('Profiler.stop', (err, r) => {
    if (!err) require('node:fs').writeFileSync(process.env.PROFILE_OUT, JSON.stringify(r.profile))
    if (process.listenerCount('SIGINT') === 0) process.exit(0)
  })
})
`

if (revisions.some((r) => /@.*--workers/.test(r))) {
  log('bench:profile profiles one process; --workers would profile only the primary, which serves nothing')
  process.exit(2)
}
const work = await mkdtemp(join(tmpdir(), 'mtls-proxy-profile-'))
const children = new Children()
process.on('exit', () => children.stopAll())
process.on('SIGINT', () => process.exit(130))
const preload = join(work, 'preload.cjs')
await writeFile(preload, PRELOAD)
// Unminified: the bundle keeps a `// node_modules/…` or `// src/…` comment above each module.
process.env.MINIFY = '0'
// In the order given; the floor (bench/floor.ts) is not built.
const isFloor = (spec: string) => revisionSpec(spec).base === 'floor'
const built = await buildSpecs(revisions.filter((r) => !isFloor(r)), work)
const builds = revisions.map((rev) => (isFloor(rev) ? { ...revisionSpec(rev), rev, cli: join(ROOT, 'bench/floor.ts') } : built.shift()!))
const { pki, files } = await benchFiles(work)
const upstream = await startNginxUpstream(nginx, work, pki, files, podList())
children.add(upstream.child)

/** For a line of a bundle, the module it belongs to. */
function modulesOf (file: string): (line: number) => string {
  const lines = existsSync(file) && file.endsWith('.js') ? readFileSync(file, 'utf8').split('\n') : []
  const owner: string[] = []
  let current = '(bundle)'
  for (let i = 0; i < lines.length; i++) {
    // esbuild names each module by its path from the build folder (through a symlinked node_modules for an older revision).
    const m = /^\/\/ (\S+\.[cm]?[jt]s)$/.exec(lines[i]!)
    if (m) current = m[1]!.includes('node_modules/') ? packageOf(m[1]!) : m[1]!.replace(/^.*?\bsrc\//, 'src/')
    owner[i] = current
  }
  return (line) => owner[line] ?? '(bundle)'
}

/** `undici` for …/node_modules/undici/lib/…, `@fastify/http-proxy` for …/node_modules/@fastify/http-proxy/… */
function packageOf (path: string): string {
  const inside = path.split('node_modules/').pop()!
  return inside.split('/').slice(0, inside.startsWith('@') ? 2 : 1).join('/')
}

function groupOf (url: string, line: number, bundleModule: (line: number) => string): string {
  if (url.endsWith('dist/cli.js')) return bundleModule(line)
  if (url.includes('node_modules/')) return packageOf(url)
  if (url.startsWith('node:')) return `node:${url.slice(5).replace(/^internal\//, '').split('/')[0]}`
  if (url.startsWith('wasm://')) return 'undici (llhttp, WebAssembly)'
  return url.replace(/^file:\/\//, '').replace(ROOT, '')
}

const results = builds.map(({ rev }) => ({ rev, groups: new Map<string, number>(), functions: new Map<string, number>(), requests: 0 }))
const add = (map: Map<string, number>, key: string, us: number) => map.set(key, (map.get(key) ?? 0) + us)
// The revisions take turns, and each one's samples and requests add up over the rounds: a round
// that other tenants of the machine slowed weighs on every revision alike.
for (let round = 1; round <= ROUNDS; round++) {
  const turns = [...builds.entries()]
  for (const [i, { rev, cli, args, nodeFlags, env }] of round % 2 ? turns : turns.reverse()) {
    const port = await freePort()
    const out = join(work, `${rev.replace(/\W/g, '_')}-${round}.cpuprofile`)
    const child = children.add(spawn(process.execPath,
      ['--require', preload, ...nodeFlags, ...(cli.endsWith('.ts') ? ['--import', 'tsx'] : []), cli, ...proxyArgs(upstream.url, files, port), ...args],
      { stdio: ['ignore', 'ignore', 'inherit'], detached: true, env: { ...process.env, ...env, PROFILE_OUT: out } }))
    const url = `http://127.0.0.1:${port}/api/v1/namespaces/default/pods`
    await waitFor(url)
    await runLoad(url, { connections: CONNECTIONS, seconds: 3, wrk }) // warm-up: JIT, pool
    process.kill(child.pid!, 'SIGWINCH')
    const load = await runLoad(url, { connections: CONNECTIONS, seconds: SECONDS, wrk })
    process.kill(child.pid!, 'SIGINT')
    await new Promise((resolve) => child.once('exit', resolve))
    const profile = JSON.parse(readFileSync(out, 'utf8')) as Profile
    const bundleModule = modulesOf(cli)
    const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]))
    const { groups, functions } = results[i]!
    profile.samples.forEach((id, j) => {
      const frame = byId.get(id)!
      const us = profile.timeDeltas[j] ?? 0
      const name = frame.functionName || '(anonymous)'
      // Native functions (the socket writes, TLS, parsing) each stand alone: they are most of the time.
      const group = frame.url === '' ? (name.startsWith('(') ? name : `native ${name}`) : groupOf(frame.url, frame.lineNumber, bundleModule)
      if (name === '(idle)') return
      add(groups, group, us)
      add(functions, `${name} (${group})`, us)
    })
    results[i]!.requests += load.requests
    log(`round ${round} ${rev}: ${load.requests} requests profiled (${Math.round(load.rps)} req/s)`)
  }
}

const perRequest = (us: number | undefined, requests: number) => ((us ?? 0) / requests).toFixed(2)
const first = results[0]!
const table = (title: string, pick: (r: typeof first) => Map<string, number>, limit: number) => {
  const keys = [...pick(first)].sort((a, b) => b[1] - a[1]).map(([k]) => k).slice(0, limit)
  for (const r of results.slice(1)) {
    for (const [k] of [...pick(r)].sort((a, b) => b[1] - a[1]).slice(0, limit)) if (!keys.includes(k)) keys.push(k)
  }
  process.stdout.write(`| ${title} | ${results.map((r) => `${r.rev}, µs per request`).join(' | ')} |\n|---|${results.map(() => '---|').join('')}\n`)
  for (const k of keys) process.stdout.write(`| ${k} | ${results.map((r) => perRequest(pick(r).get(k), r.requests)).join(' | ')} |\n`)
  const total = (r: typeof first) => [...pick(r).values()].reduce((a, b) => a + b, 0)
  process.stdout.write(`| all but idle | ${results.map((r) => perRequest(total(r), r.requests)).join(' | ')} |\n\n`)
}
table('where (self time)', (r) => r.groups, 40)
table('function (self time)', (r) => r.functions, TOP)
children.stopAll()
await rm(work, { recursive: true, force: true })
process.exit(0)
