// --workers: several processes share the listener, and the proxy still speaks with one voice:
// one start-up line, one reload line, one expiry warning, one metrics total. Real processes,
// real sockets, real TLS. (What goes wrong around them: workers-failures.test.ts.)
import { rename, writeFile } from 'node:fs/promises'
import t from 'tap'
import { cpuCount } from '../../src/process/workers/cores.js'
import { runCli, startCli } from '../helpers/cli.js'
import { pkiWithFiles } from '../helpers/pki.js'
import { until } from '../helpers/until.js'
import { fresh, identityUpstream, said, startWorkers, workersSeen } from '../helpers/workers.js'

const DAY = 86_400_000
const { pki, files } = await pkiWithFiles(t)
const upstream = await identityUpstream(t, pki)
const credentials = (f = files) => ['--upstream', upstream.url, '--cacert', f.cacert, '--cert', f.cert, '--key', f.key]

t.test('two workers share the port, answer in turn, and say each proxy-wide thing once', async (t) => {
  const proxy = await startWorkers(t, [...credentials(), '--workers', '2'])
  for (let i = 0; i < 8; i++) t.equal((await fresh(`${proxy.url}/api/v1/pods`, 'POST')).status, 200)
  await until(() => workersSeen(proxy).size === 2, 3_000)
  t.same([...workersSeen(proxy)].sort(), [1, 2], 'requests answered by both workers')
  t.equal(said(proxy, 'serving ').length, 1, 'one "serving" line')
  t.match(said(proxy, 'serving ')[0], { workers: 2 })
  t.equal(said(proxy, 'client certificate CN=demo-admin').length, 1, 'the client certificate told once')
  t.equal(said(proxy, 'upstream reachable').length, 1, 'readiness told once')
  // Every scrape sums both workers, whichever worker answers it.
  for (let i = 0; i < 4; i++) {
    const metrics = await fresh(`${proxy.url}/-/metrics`)
    t.equal(metrics.status, 200)
    t.match(metrics.body, /^mtls_proxy_requests_total\{method="POST",code="200",cluster="default"\} 8$/m, `scrape ${i + 1}: 8 POSTs in all`)
    t.match(metrics.body, /^x509_cert_not_after\{role="client",[^}]*\} \d{10}$/m, 'certificate figures not summed')
  }
  t.equal((await fresh(`${proxy.url}/-/status`)).status, 200)
})

t.test('a rotation reaches every worker and is told once; SIGHUP too', async (t) => {
  const own = await pkiWithFiles(t, pki)
  const proxy = await startWorkers(t, [...credentials(own.files), '--workers', '2'])
  const rotated = await pki.ca.issue({ commonName: 'rotated', usage: 'client' })
  await writeFile(`${own.files.key}.new`, rotated.keyPem, { mode: 0o600 })
  await writeFile(`${own.files.cert}.new`, rotated.certPem)
  await rename(`${own.files.key}.new`, own.files.key)
  await rename(`${own.files.cert}.new`, own.files.cert)
  // Both workers: eight fresh connections in a row all go out as the new identity.
  await until(async () => {
    const answers = await Promise.all(Array.from({ length: 8 }, () => fresh(`${proxy.url}/api/v1/pods`)))
    return answers.every((a) => a.body === 'rotated')
  }, 10_000)
  await until(() => workersSeen(proxy).size === 2, 3_000)
  t.pass('both workers answered')
  await until(() => said(proxy, 'certificates reloaded').length > 0, 2_000)
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.equal(said(proxy, 'certificates reloaded').length, 1, 'one reload line')
  proxy.child.kill('SIGHUP')
  await until(() => said(proxy, 'certificate files unchanged').length > 0, 5_000)
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.equal(said(proxy, 'SIGHUP: reloading').length, 1, 'one SIGHUP line')
  t.equal(said(proxy, 'certificate files unchanged').length, 1, 'one outcome line')
  t.equal((await fresh(`${proxy.url}/api/v1/pods`)).body, 'rotated')
})

t.test('a certificate near expiry is warned about once, not once per worker', async (t) => {
  const own = await pkiWithFiles(t, pki)
  const soon = await pki.ca.issue({ commonName: 'short-lived', usage: 'client', notAfter: new Date(Date.now() + 3 * DAY) })
  await writeFile(own.files.cert, soon.certPem)
  await writeFile(own.files.key, soon.keyPem, { mode: 0o600 })
  const proxy = await startWorkers(t, [...credentials(own.files), '--workers', '2'])
  await new Promise((resolve) => setTimeout(resolve, 500))
  const warnings = said(proxy, 'client certificate CN=short-lived')
  t.equal(warnings.length, 1, 'one line')
  t.match(warnings[0], { level: 50, msg: /days left/ })
})

t.test('a worker that dies is replaced; the proxy goes on serving', async (t) => {
  const proxy = await startWorkers(t, [...credentials(), '--workers', '2'])
  const pids = proxy.logs().find((l) => Array.isArray(l.pids))?.pids as number[]
  process.kill(pids[1]!, 'SIGKILL')
  await until(() => said(proxy, 'starting another worker').length === 1, 5_000)
  t.match(said(proxy, 'worker ')[0], { level: 50, signal: 'SIGKILL', msg: /exited on SIGKILL/ })
  for (let i = 0; i < 4; i++) t.equal((await fresh(`${proxy.url}/api/v1/pods`)).status, 200, 'served meanwhile and after')
  // The third worker started takes the dead one's place and serves its share.
  await until(async () => {
    await Promise.all(Array.from({ length: 4 }, () => fresh(`${proxy.url}/-/healthz`)))
    return workersSeen(proxy).has(3)
  }, 10_000)
  t.pass('worker 3 serves')
})

t.test('SIGTERM: a request in flight finishes, every worker exits, the primary exits 0', async (t) => {
  const proxy = await startWorkers(t, [...credentials(), '--workers', '2'])
  const pids = proxy.logs().find((l) => Array.isArray(l.pids))?.pids as number[]
  const slow = fresh(`${proxy.url}/slow`)
  await until(() => upstream.seen.some((r) => r.url === '/slow'), 5_000)
  proxy.child.kill('SIGTERM')
  t.same(await slow, { status: 200, body: 'demo-admin' }, 'the request in flight was answered')
  const exit = await proxy.exited
  t.equal(exit.code, 0)
  for (const pid of pids) t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `worker ${pid} is gone`)
  t.equal(said(proxy, 'stopped').length, 2, 'the voice worker and the primary say "stopped"')
})

t.test('--workers auto is one per core this process may use (one core: no workers, one process)', async (t) => {
  if (cpuCount() === 1) {
    const proxy = await startCli(t, [...credentials(), '--workers', 'auto'])
    t.notOk(said(proxy, 'serving ')[0]?.workers, 'serves alone')
    return
  }
  const proxy = await startWorkers(t, [...credentials(), '--workers', 'auto'])
  t.match(proxy.logs().find((l) => Array.isArray(l.pids)), { workers: cpuCount() })
})

t.test('mistakes: one line on stderr, exit 2, once however many workers', async (t) => {
  const mismatched = await pki.ca.issue({ commonName: 'other', usage: 'client' })
  const otherKey = `${files.dir}/other.key`
  await writeFile(otherKey, mismatched.keyPem, { mode: 0o600 })
  const cases: Array<[string, string[], RegExp]> = [
    ['zero', [...credentials(), '--workers', '0'], /--workers must be auto or a whole number from 1 to 64, got '0'/],
    ['a word', [...credentials(), '--workers', 'many'], /--workers must be auto or a whole number from 1 to 64, got 'many'/],
    ['with a Unix socket', [...credentials(), '--workers', '2', '--unix-socket', `${files.dir}/s.sock`], /--workers 2 cannot share --unix-socket/],
    ['a key that is not the certificate\'s', [...credentials({ ...files, key: otherKey }), '--workers', '3'], /--key /],
  ]
  for (const [name, args, message] of cases) {
    const run = await runCli(args)
    t.equal(run.code, 2, `${name}: exit 2`)
    t.match(run.stderr, message, name)
    t.equal(run.stderr.trim().split('\n').length, 1, `${name}: one line`)
  }
})
