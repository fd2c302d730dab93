// --workers when things go wrong: signals during the start, workers that die or cannot start, a
// primary killed outright, a config file edited since, another program's cluster. Nothing hangs,
// nothing accepted is lost, the proxy keeps one voice and counters never go back.
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { startCli } from '../helpers/cli.js'
import { ROOT } from '../helpers/root.js'
import { bundledCli } from '../helpers/dist.js'
import { freePort } from '../helpers/net.js'
import { pkiWithFiles } from '../helpers/pki.js'
import { until } from '../helpers/until.js'
import { LAST_SEEN_MS } from '../../src/process/workers/gatherer.js'
import { count, fresh, gone, identityUpstream, pidsOf, said, sleep, startWorkers, workersSeen } from '../helpers/workers.js'

// Mostly waiting on the workers' own clocks (a restart, LAST_SEEN_MS between metric fetches): about 55 s on an idle
// machine, past tap's 120 s per file beside two busy loops on 2 cores, where each worker takes seconds to start.
t.setTimeout(300_000)

const { pki, files } = await pkiWithFiles(t)
const upstream = await identityUpstream(t, pki)
const credentials = (f = files) => ['--upstream', upstream.url, '--cacert', f.cacert, '--cert', f.cert, '--key', f.key]

t.test('SIGTERM while the workers start: no more are started, all stop, exit 0', async (t) => {
  const proxy = await startCli(t, [...credentials(), '--workers', '3', '--shutdown-timeout', '5s'])
  // The voice serves; the other two are starting.
  proxy.child.kill('SIGTERM')
  // Exit 0: every worker stopped on its own (one killed at the deadline would make it 1).
  t.equal((await proxy.exited).code, 0)
  t.notOk(proxy.logs().some((l) => l.msg === '3 worker processes share the listener'), 'the start was not finished')
})

t.test('a worker that cannot start ends the start: its exit code, no worker left behind', async (t) => {
  const dir = (await pkiWithFiles(t, pki)).files.dir
  // The second worker fails as it starts; the third is slow to.
  const hook = join(dir, 'fail-second.cjs')
  await writeFile(hook, "const c = require('node:cluster'); if (c.isWorker && c.worker.id === 2) process.exit(3); " +
    'if (c.isWorker && c.worker.id === 3) { const end = Date.now() + 1500; while (Date.now() < end); }\n')
  const proxy = await startCli(t, [...credentials(), '--workers', '3'], { NODE_OPTIONS: `--require ${hook}` })
  const exit = await proxy.exited
  t.equal(exit.code, 3)
  const pids = proxy.logs().map((l) => l.pid).filter((p): p is number => typeof p === 'number')
  await until(() => pids.every(gone), 5_000)
  t.pass('no worker left')
})

t.test('every worker killed: new ones take over, the proxy does not exit', async (t) => {
  // A fixed port: with none left, the listener closes, and a new worker would draw a new port 0.
  const proxy = await startWorkers(t, [...credentials(), '--workers', '2', '--port', String(await freePort())], {}, { anyPort: false })
  for (const pid of pidsOf(proxy)) process.kill(pid, 'SIGKILL')
  await until(async () => {
    try { return (await fresh(`${proxy.url}/api/v1/pods`)).status === 200 } catch { return false }
  }, 10_000)
  t.equal(proxy.child.exitCode, null, 'the primary runs on')
  await until(() => said(proxy, 'serving ').length === 2, 3_000)
  t.pass('the new first worker speaks for the proxy')
})

t.test('the voice dies: another worker speaks at once (SIGHUP is told once, while the replacement starts)', async (t) => {
  const proxy = await startWorkers(t, [...credentials(), '--workers', '2'])
  const [voicePid] = pidsOf(proxy)
  process.kill(voicePid!, 'SIGKILL')
  await until(() => said(proxy, 'starting another worker').length === 1, 5_000)
  proxy.child.kill('SIGHUP')
  await until(() => said(proxy, 'SIGHUP: reloading').length === 1, 5_000)
  await sleep(300)
  t.equal(said(proxy, 'SIGHUP: reloading').length, 1, 'told once')
  t.not(said(proxy, 'SIGHUP: reloading')[0]!.worker, 1, 'by the worker that took over')
})

t.test('a replacement serves the settings read at start, not a config file edited since', async (t) => {
  const dir = (await pkiWithFiles(t, pki)).files.dir
  const config = join(dir, 'mtls-proxy.yaml')
  await writeFile(config, 'reject-methods: POST\n')
  const proxy = await startWorkers(t, [...credentials(), '--workers', '2', '--config', config])
  await writeFile(config, 'reject-methods: GET\n')
  process.kill(pidsOf(proxy)[1]!, 'SIGKILL')
  await until(async () => {
    await fresh(`${proxy.url}/api/v1/pods`)
    return workersSeen(proxy).has(3)
  }, 10_000)
  const answers = await Promise.all(Array.from({ length: 6 }, () => fresh(`${proxy.url}/api/v1/pods`, 'POST')))
  t.same(answers.map((a) => a.status), [405, 405, 405, 405, 405, 405], 'POST refused by every worker')
  const gets = await Promise.all(Array.from({ length: 6 }, () => fresh(`${proxy.url}/api/v1/pods`)))
  t.same(gets.map((a) => a.status), [200, 200, 200, 200, 200, 200], 'GET served by every worker')
})

t.test('Ctrl-C to the process group, or SIGTERM to it as systemd sends: requests in flight finish, said once', async (t) => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const proxy = await startWorkers(t, [...credentials(), '--workers', '2'], {}, { group: true })
    const slow = Promise.all([fresh(`${proxy.url}/slow`), fresh(`${proxy.url}/slow`)])
    await until(() => upstream.seen.filter((r) => r.url === '/slow').length >= 2, 5_000)
    upstream.seen.length = 0
    process.kill(-proxy.child.pid!, signal)
    t.same((await slow).map((a) => a.status), [200, 200], `${signal}: both answered`)
    t.equal((await proxy.exited).code, 0)
    t.equal(said(proxy, `${signal}: shutting down`).length + said(proxy, 'asked to stop').length, 1, `${signal}: the voice says it once`)
  }
})

t.test('the primary killed outright: the workers finish what is in flight, then stop', async (t) => {
  const proxy = await startWorkers(t, [...credentials(), '--workers', '2'])
  const pids = pidsOf(proxy)
  const slow = fresh(`${proxy.url}/slow`)
  await until(() => upstream.seen.some((r) => r.url === '/slow'), 5_000)
  upstream.seen.length = 0
  proxy.child.kill('SIGKILL')
  t.equal((await slow).status, 200, 'answered')
  await until(() => pids.every(gone), 10_000)
  t.pass('both workers stopped')
})

t.test('metrics: a dead worker\'s requests stay counted, a reload is counted once', async (t) => {
  const proxy = await startWorkers(t, [...credentials(), '--workers', '2'])
  for (let i = 0; i < 6; i++) await fresh(`${proxy.url}/api/v1/pods`, 'PUT')
  const posts = /^mtls_proxy_requests_total\{method="PUT",code="200",cluster="default"\} (\d+)$/m
  t.equal(count((await fresh(`${proxy.url}/-/metrics`)).body, posts), 6)
  process.kill(pidsOf(proxy)[1]!, 'SIGKILL')
  await until(() => said(proxy, 'starting another worker').length === 1, 5_000)
  t.equal(count((await fresh(`${proxy.url}/-/metrics`)).body, posts), 6, 'still 6 with one worker gone')
  proxy.child.kill('SIGHUP')
  await until(() => said(proxy, 'certificate files unchanged').length === 1, 5_000)
  await sleep(300)
  t.equal(count((await fresh(`${proxy.url}/-/metrics`)).body, /^mtls_proxy_certificate_reloads_total\{outcome="unchanged",cluster="default"\} (\d+)$/m), 1)
})

t.test('metrics: what a worker counted before it died stays in the sum, though no scrape came between', async (t) => {
  const proxy = await startWorkers(t, [...credentials(), '--workers', '2'])
  for (let i = 0; i < 6; i++) await fresh(`${proxy.url}/api/v1/pods`, 'PATCH')
  await until(() => workersSeen(proxy).size === 2, 3_000)
  // The primary fetches every worker's figures each LAST_SEEN_MS: wait past one fetch, scrape nothing.
  await sleep(LAST_SEEN_MS + 1_000)
  process.kill(pidsOf(proxy)[1]!, 'SIGKILL')
  await until(() => said(proxy, 'starting another worker').length === 1, 5_000)
  const patches = /^mtls_proxy_requests_total\{method="PATCH",code="200",cluster="default"\} (\d+)$/m
  t.equal(count((await fresh(`${proxy.url}/-/metrics`)).body, patches), 6, 'all 6, the dead worker\'s share included')
})

t.test('under another program\'s cluster (pm2 and the like), --workers 1 serves as one plain process', async (t) => {
  const dir = (await pkiWithFiles(t, pki)).files.dir
  const wrapper = join(dir, 'wrapper.mjs')
  // The installed CLI (the bundle) forked as pm2 forks a script.
  await writeFile(wrapper, "import cluster from 'node:cluster'\n" +
    `cluster.setupPrimary({ exec: ${JSON.stringify(await bundledCli())}, args: process.argv.slice(2) })\n` +
    'cluster.fork()\n')
  const child = spawn(process.execPath, [wrapper, ...credentials(), '--port', '0'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { try { process.kill(child.pid!, 'SIGKILL') } catch {} })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  const lines = () => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
  await until(() => lines().some((l) => typeof l.listen === 'string'), 15_000)
  const serving = lines().find((l) => typeof l.listen === 'string')!
  t.notOk(serving.worker, 'no worker field: a plain process')
  t.match((await fresh(`${serving.listen as string}/-/metrics`)), { status: 200, body: /mtls_proxy_requests_total/ }, 'its own metrics')
  t.ok(lines().some((l) => String(l.msg).startsWith('client certificate CN=demo-admin')), 'says what a single process says')
  const pid = lines().find((l) => typeof l.pid === 'number')
  t.notOk(pid, 'no pid list: no supervisor')
})
