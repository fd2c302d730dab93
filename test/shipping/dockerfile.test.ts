// No Docker engine runs on these machines, so this test runs the Dockerfile's own steps outside
// Docker: each stage in a folder of its own standing for its root, WORKDIR, COPY, ENV and RUN as
// written; then the image's ENTRYPOINT is started and its HEALTHCHECK run.
import { execFile, execFileSync, spawn } from 'node:child_process'
import { chmod, chown, copyFile, cp, mkdir, readFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { freePort } from '../helpers/net.js'
import { ROOT } from '../helpers/root.js'
import { pkiWithFiles } from '../helpers/pki.js'
import { echoHandler, startUpstream } from '../helpers/upstream.js'
import { get } from '../helpers/http.js'
import { until } from '../helpers/until.js'
import { tempDir } from '../helpers/temp.js'
import { cannotRunAsOtherUid, OTHER_UID } from '../helpers/other-uid.js'

// Four RUN steps, two of them npm ci (the build's and production's, each allowed 240 s): about 45 s on an
// idle machine, past tap's 120 s per file beside two busy loops on 2 cores.
t.setTimeout(600_000)

interface Stage { root: string; workdir: string; env: Record<string, string> }

function instructions (text: string): Array<[string, string]> {
  return text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
    .map((l) => { const i = l.indexOf(' '); return [l.slice(0, i).toUpperCase(), l.slice(i + 1).trim()] as [string, string] })
}

const run = promisify(execFile)
const execForm = (args: string) => JSON.parse(args) as string[]

t.test('the Dockerfile\'s steps build a runnable image layout: production dependencies only, healthy', async (t) => {
  const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8')
  const base = await tempDir(t, 'image')
  const stages = new Map<string, Stage>()
  let stage!: Stage
  let entrypoint: string[] = []
  let healthcheck: string[] = []
  const inStage = (s: Stage, path: string) => join(s.root, path.startsWith('/') ? path : join(s.workdir, path))
  // An absolute path in ENV names a place in the image: here, under the stage's root.
  const imageEnv = (s: Stage) => Object.fromEntries(Object.entries(s.env).map(([k, v]) => [k, v.startsWith('/') ? inStage(s, v) : v]))
  for (const [op, args] of instructions(dockerfile)) {
    if (op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args)!
      t.match(m[1], /^node:(\d+)-/, 'a Node.js base image')
      stage = { root: join(base, `stage${stages.size}`), workdir: '/', env: {} }
      await mkdir(stage.root, { recursive: true })
      stages.set(m[2] ?? String(stages.size), stage)
    } else if (op === 'WORKDIR') {
      stage.workdir = args
      await mkdir(inStage(stage, args), { recursive: true })
    } else if (op === 'ENV') {
      for (const m of args.matchAll(/(\w+)=(\S+)/g)) stage.env[m[1]!] = m[2]!
    } else if (op === 'COPY') {
      const parts = args.split(/\s+/)
      const from = parts[0]!.startsWith('--from=') ? stages.get(parts.shift()!.slice(7)) : undefined
      const dest = parts.pop()!
      for (const src of parts) {
        const source = from ? inStage(from, src) : join(ROOT, src)
        const target = dest.endsWith('/') || parts.length > 1 ? join(inStage(stage, dest), src.split('/').pop()!) : inStage(stage, dest)
        await cp(source, target, { recursive: true })
      }
    } else if (op === 'RUN') {
      // The package cache the project's own `npm ci` filled answers these installs. Not execFileSync: a
      // blocked event loop cannot hear tap's timeout, and the teardown that removes the image would never run.
      await run('bash', ['-c', args], { cwd: inStage(stage, '.'), env: { ...process.env, ...imageEnv(stage), npm_config_prefer_offline: 'true' }, maxBuffer: 64 << 20, timeout: 240_000 })
    } else if (op === 'ENTRYPOINT') {
      entrypoint = execForm(args)
    } else if (op === 'HEALTHCHECK') {
      healthcheck = execForm(args.slice(args.indexOf('CMD') + 3).trim())
    }
  }
  const runtime = stage
  const app = inStage(runtime, '.')
  t.ok(existsSync(join(app, 'dist/cli.js')), 'compiled CLI in the image')
  t.notOk(existsSync(join(app, 'src')), 'no sources in the image')
  t.notOk(existsSync(join(app, 'dist/demo')), 'no demo in the image')
  for (const dev of ['typescript', 'tap', 'tsx', '@peculiar/x509']) t.notOk(existsSync(join(app, 'node_modules', dev)), `no ${dev} (a dev dependency)`)
  for (const dep of ['fastify', 'undici', 'pino', 'prom-client']) t.ok(existsSync(join(app, 'node_modules', dep)), `${dep} installed`)
  t.equal(runtime.env.NODE_ENV, 'production')
  if (Number(process.versions.node.split('.')[0]) >= 22) {
    t.ok(runtime.env.NODE_COMPILE_CACHE && existsSync(inStage(runtime, runtime.env.NODE_COMPILE_CACHE)), 'the compile cache was made at build time (Node.js 22 and later)')
  }
  t.match(dockerfile, /^USER (?!root)\w+/m, 'runs as a non-root user')

  // /app/... in the image is <runtime root>/app/... here
  const local = (args: string[]) => args.map((a) => (a.startsWith('/') && existsSync(join(runtime.root, a)) ? join(runtime.root, a) : a))
  const [node, ...entryArgs] = local(entrypoint)
  t.equal(node, 'node')
  const help = execFileSync(process.execPath, [...entryArgs, '--help'], { encoding: 'utf8', env: { PATH: process.env.PATH } })
  t.match(help, /Usage: mtls-proxy/)

  const { pki, files } = await pkiWithFiles(t)
  const upstream = await startUpstream(t, pki, echoHandler)
  const port = await freePort()
  const env = {
    PATH: process.env.PATH,
    ...imageEnv(runtime),
    MTLS_PROXY_PORT: String(port),
    MTLS_PROXY_UPSTREAM: upstream.url,
    MTLS_PROXY_CACERT: files.cacert,
    MTLS_PROXY_CERT: files.cert,
    MTLS_PROXY_KEY: files.key,
  }
  const child = spawn(process.execPath, entryArgs, { env, stdio: 'ignore' })
  t.teardown(() => { child.kill('SIGKILL') })
  await until(async () => (await get(`http://127.0.0.1:${port}/-/healthz`).catch(() => ({ status: 0 }))).status === 200, 15_000)
  const [hcNode, ...hcArgs] = local(healthcheck)
  t.equal(hcNode, 'node')
  const healthy = spawn(process.execPath, hcArgs, { env, stdio: 'ignore' })
  t.equal(await new Promise((resolve) => healthy.on('exit', resolve)), 0, 'HEALTHCHECK passes while serving')
  t.equal((await get(`http://127.0.0.1:${port}/api/v1/pods`)).status, 200, 'the image proxies')
  child.kill('SIGTERM')
  t.equal(await new Promise((resolve) => child.on('exit', resolve)), 0)
  const sick = spawn(process.execPath, hcArgs, { env, stdio: 'ignore' })
  t.equal(await new Promise((resolve) => sick.on('exit', resolve)), 1, 'HEALTHCHECK fails once stopped')

  // `docker run --user "$(id -u):$(id -g)"`, as the README's recipe runs it: any uid, not the image's own
  // 1000, serves with key files only it can read. The image's /app is readable by all, as Docker's layers are.
  const why = cannotRunAsOtherUid()
  if (why) {
    t.comment(`not run as another uid: ${why}`)
    return
  }
  await chmod(base, 0o755)
  for (const s of stages.values()) await chmod(s.root, 0o755)
  const certs = join(base, 'certs')
  await mkdir(certs, { mode: 0o700 })
  for (const [name, from] of [['ca.crt', files.cacert], ['client.crt', files.cert], ['client.key', files.key]] as const) {
    await copyFile(from, join(certs, name))
    await chmod(join(certs, name), 0o600)
    await chown(join(certs, name), OTHER_UID, OTHER_UID)
  }
  await chown(certs, OTHER_UID, OTHER_UID)
  const asOther = { ...env, MTLS_PROXY_CACERT: join(certs, 'ca.crt'), MTLS_PROXY_CERT: join(certs, 'client.crt'), MTLS_PROXY_KEY: join(certs, 'client.key'), HOME: '/' }
  const other = spawn(process.execPath, entryArgs, { env: asOther, stdio: ['ignore', 'pipe', 'pipe'], uid: OTHER_UID, gid: OTHER_UID })
  let said = ''
  other.stdout.on('data', (d: Buffer) => { said += d.toString() })
  other.stderr.on('data', (d: Buffer) => { said += d.toString() })
  t.teardown(() => { other.kill('SIGKILL') })
  await until(async () => (await get(`http://127.0.0.1:${port}/-/healthz`).catch(() => ({ status: 0 }))).status === 200, 15_000)
    .catch((err: Error) => { throw new Error(`${err.message}: ${said}`) })
  t.equal((await get(`http://127.0.0.1:${port}/api/v1/pods`)).status, 200, `as uid ${OTHER_UID}, with key files only it can read`)
  t.notMatch(said, /readable by|belongs to uid/, 'and no warning about them')
  const healthyAsOther = spawn(process.execPath, hcArgs, { env: asOther, stdio: 'ignore', uid: OTHER_UID, gid: OTHER_UID })
  t.equal(await new Promise((resolve) => healthyAsOther.on('exit', resolve)), 0, 'its HEALTHCHECK passes as that uid too')
  other.kill('SIGTERM')
  await new Promise((resolve) => other.on('exit', resolve))
  // (its exit status is not judged: tap's process-info hook, which it puts into every child, cannot write its record as that uid)
  t.match(said, /"msg":"stopped"/, 'stops on SIGTERM')
})
