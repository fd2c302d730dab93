// Credential sources that are not certificate files: a FIFO, a device, a file far too large, a
// file of BEGIN lines with no END. None may hang the start, stop later reloads, freeze the event
// loop or hold up shutdown; the old certificate keeps serving meanwhile.
import { execFileSync } from 'node:child_process'
import { rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { certificateBlocks, MAX_PEM_FILE_BYTES } from '../../src/credentials/pem.js'
import { pkiWithFiles } from '../helpers/pki.js'
import { startProxy } from '../helpers/proxy.js'
import { runCli, startCli } from '../helpers/cli.js'
import { get } from '../helpers/http.js'
import { echoHandler, startUpstream } from '../helpers/upstream.js'
import { until } from '../helpers/until.js'

const { pki, files } = await pkiWithFiles(t)
const upstream = await startUpstream(t, pki, echoHandler)
const mkfifo = (path: string) => execFileSync('mkfifo', [path])
const base = ['--upstream', upstream.url]
const fifo = join(files.dir, 'fifo')
mkfifo(fifo)
const huge = join(files.dir, 'huge.crt')
await writeFile(huge, `${pki.ca.certPem}${'#'.repeat(MAX_PEM_FILE_BYTES)}`)
const tokenFile = join(files.dir, 'token')
await writeFile(tokenFile, 'f'.repeat(32))

t.test('at start: one line naming the file and what it is, exit 2, no wait', async (t) => {
  const cases: Array<[string, string[], RegExp]> = [
    ['a FIFO as --cert', [...base, '--cacert', files.cacert, '--cert', fifo, '--key', files.key], /--cert .*fifo: cannot read: is a FIFO, not a regular file/],
    ['a FIFO as --cacert', [...base, '--cacert', fifo, '--cert', files.cert, '--key', files.key], /--cacert .*fifo: cannot read: is a FIFO, not a regular file/],
    ['/dev/zero as --key', [...base, '--cacert', files.cacert, '--cert', files.cert, '--key', '/dev/zero'], /--key \/dev\/zero: cannot read: is a character device, not a regular file/],
    ['a folder as --cert', [...base, '--cacert', files.cacert, '--cert', files.dir, '--key', files.key], /--cert .*: cannot read: is a directory/],
    ['a CA file over 1 MiB', [...base, '--cacert', huge, '--cert', files.cert, '--key', files.key], /--cacert .*huge\.crt: cannot read: is larger than 1 MiB/],
    ['a FIFO as --kubeconfig', ['--kubeconfig', fifo], /cannot read kubeconfig .*fifo: is a FIFO, not a regular file/],
    ['a FIFO as --config', ['--config', fifo], /cannot read config file .*fifo: is a FIFO, not a regular file/],
    ['a FIFO as --token-file', [...base, '--cacert', files.cacert, '--cert', files.cert, '--key', files.key, '--token-file', fifo], /--token-file .*fifo: cannot read: is a FIFO, not a regular file/],
  ]
  // A read that waits on a FIFO or a device never ends: the CLI is killed after KILL_MS, so a start that
  // answers by itself (exit 2, not the kill) in well under that did not wait.
  const KILL_MS = 60_000
  for (const [name, args, message] of cases) {
    const started = Date.now()
    const run = await runCli(args, {}, KILL_MS)
    t.equal(run.code, 2, `${name}: exit 2`)
    t.match(run.stderr, message, name)
    t.equal(run.stderr.trim().split('\n').length, 1, `${name}: one line`)
    t.ok(Date.now() - started < KILL_MS / 2, `${name}: answered in ${Date.now() - started} ms`)
  }
})

t.test('a FIFO swapped in for the certificate: that reload fails, the old one serves, the next rotation works, SIGTERM is prompt', async (t) => {
  const own = await pkiWithFiles(t, pki)
  const GRACE_MS = 2_000
  const proxy = await startCli(t, ['--upstream', upstream.url, '--cacert', own.files.cacert, '--cert', own.files.cert, '--key', own.files.key, '--shutdown-timeout', String(GRACE_MS / 1000)])
  const swap = join(own.files.dir, 'swap')
  mkfifo(swap)
  await rename(swap, own.files.cert)
  await until(() => proxy.logs().some((l) => l.msg?.toString().startsWith('certificate reload failed')), 5_000)
  t.match(proxy.logs().find((l) => String(l.msg).startsWith('certificate reload failed')), { error: /is a FIFO, not a regular file/ })
  t.equal((await get(`${proxy.url}/-/healthz`)).status, 200, 'still answering')
  t.equal((await get(`${proxy.url}/api/v1/pods`)).status, 200, 'still forwarding with the old certificate')
  const rotated = await pki.ca.issue({ commonName: 'after-the-fifo', usage: 'client' })
  await rm(own.files.cert)
  await writeFile(own.files.key, rotated.keyPem, { mode: 0o600 })
  await writeFile(own.files.cert, rotated.certPem)
  await until(() => proxy.logs().some((l) => l.identity === 'CN=after-the-fifo'), 5_000)
  t.pass('a later rotation is picked up: reloads were not stuck behind the FIFO')
  // Put the FIFO back and stop at once: shutdown must not wait on it.
  await rm(own.files.cert)
  mkfifo(own.files.cert)
  await new Promise((resolve) => setTimeout(resolve, 150))
  const stopping = Date.now()
  proxy.child.kill('SIGTERM')
  const exit = await proxy.exited
  t.equal(exit.code, 0)
  // A stop stuck on the FIFO would never end; a prompt one ends within its grace, here given room for a busy machine.
  t.ok(Date.now() - stopping < 5 * GRACE_MS, `stopped in ${Date.now() - stopping} ms (--shutdown-timeout ${GRACE_MS} ms)`)
})

t.test('a CA file of BEGIN lines with no END: parsed in linear time, the event loop keeps answering', async (t) => {
  const own = await pkiWithFiles(t, pki)
  const proxy = await startProxy(t, upstream.url, own.files)
  // Just under the size bound: 19,000 BEGIN lines. The quadratic parser took QUADRATIC_MS for 1.1 MB, holding the event
  // loop all along, and a reload parses up to six times (its retries); the bounds below tell that apart.
  const QUADRATIC_MS = 16_800
  await writeFile(own.files.cacert, '-----BEGIN CERTIFICATE-----\n'.repeat(Math.floor((MAX_PEM_FILE_BYTES - 1) / 28)))
  const started = Date.now()
  const reload = proxy.app.clusters.main.credentials.reload('test')
  const probe = await get(`${proxy.url}/-/healthz`)
  const probed = Date.now() - started
  const outcome = await reload
  t.equal(probe.status, 200)
  t.ok(probed < QUADRATIC_MS / 4, `/-/healthz answered in ${probed} ms during the reload`)
  t.equal(outcome.outcome, 'failed')
  t.match(outcome.error, /no PEM certificate found/)
  t.ok(Date.now() - started < QUADRATIC_MS, `the reload (with its retries) ended in ${Date.now() - started} ms, sooner than one quadratic parse`)
  t.equal((await get(`${proxy.url}/api/v1/pods`)).status, 200, 'the old CA still serves')
})

t.test('certificate blocks are found in one pass', async (t) => {
  const cert = pki.client.certPem.trim()
  t.same(certificateBlocks(`junk\n${cert}\nmore\n${cert}\n`), [cert, cert])
  t.same(certificateBlocks(`-----BEGIN CERTIFICATE-----\n${cert}`), [`-----BEGIN CERTIFICATE-----\n${cert}`], 'a stray BEGIN before a block is part of it, as the old pattern had it')
  t.same(certificateBlocks('-----BEGIN CERTIFICATE-----\nabc'), [])
  const many = '-----BEGIN CERTIFICATE-----'.repeat(200_000)
  t.same(certificateBlocks(many), [])
  // Linear: ten times the input takes about ten times as long (a quadratic parser, a hundred). The fastest of a few runs
  // of each, so a busy machine's pauses do not count.
  const fastest = (text: string) => Math.min(...Array.from({ length: 5 }, () => {
    const started = process.hrtime.bigint()
    certificateBlocks(text)
    return Number(process.hrtime.bigint() - started) / 1e6
  }))
  const tenth = fastest('-----BEGIN CERTIFICATE-----'.repeat(20_000))
  const whole = fastest(many)
  t.ok(whole < 30 * tenth, `5.4 MB of BEGIN with no END in ${whole.toFixed(1)} ms, a tenth of it in ${tenth.toFixed(1)} ms`)
})
