// The systemd unit's system-call filter, applied as systemd would apply it (without systemd): the
// compiled CLI must start, answer --version and forward a request under it. Node calls pkey_alloc
// at start, which @system-service does not hold: a filter without @pkey killed it with SIGSYS.
import { execFileSync, spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { ROOT } from '../helpers/root.js'
import { bundledCli } from '../helpers/dist.js'
import { get } from '../helpers/http.js'
import { pkiWithFiles } from '../helpers/pki.js'
import { buildRunner, seccompUnavailable, unitFilter } from '../helpers/seccomp.js'
import { echoHandler, startUpstream } from '../helpers/upstream.js'
import { until } from '../helpers/until.js'

const unavailable = seccompUnavailable()

t.test('the unit\'s SystemCallFilter: the CLI starts, prints its version and forwards a request', { skip: unavailable ?? false }, async (t) => {
  const unit = await readFile(join(ROOT, 'config/mtls-proxy.service'), 'utf8')
  const filter = unitFilter(unit)
  t.equal(filter.errorNumber, 'EPERM', 'a call outside the list fails with EPERM instead of killing the proxy')
  // The compiled CLI, as the unit runs it (node dist/cli.js); the filter's runner is compiled beside the test's files.
  const cli = await bundledCli()
  const { pki, files } = await pkiWithFiles(t)
  const upstream = await startUpstream(t, pki, echoHandler)

  // Both as the unit refuses (EPERM) and stricter, killing on any call outside the list: the list
  // itself must hold every call the proxy makes, not lean on EPERM.
  for (const refuse of ['errno', 'kill'] as const) {
    const runner = await buildRunner(files.dir, filter, refuse)
    const version = execFileSync(runner, ['--', process.execPath, cli, '--version'], { encoding: 'utf8' })
    t.match(version, /^\d+\.\d+\.\d+/, `${refuse}: --version`)

    const child = spawn(runner, ['--', process.execPath, cli, '--upstream', upstream.url, '--cacert', files.cacert,
      '--cert', files.cert, '--key', files.key, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] })
    t.teardown(() => { child.kill('SIGKILL') })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => { out += d })
    child.stderr.on('data', (d: Buffer) => { err += d })
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
    await until(() => /"listen":"http:\/\/127\.0\.0\.1:\d+"/.test(out) || child.exitCode !== null || child.signalCode !== null, 15_000)
    t.equal(child.signalCode, null, `${refuse}: not killed (${err.trim().slice(0, 200)})`)
    const url = /"listen":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out)?.[1]
    t.ok(url, `${refuse}: serving`)
    const res = await get(`${url}/api/v1/namespaces/default/pods`)
    t.equal(res.status, 200, `${refuse}: a request forwarded over mutual TLS`)
    child.kill('SIGTERM')
    t.same(await exited, { code: 0, signal: null }, `${refuse}: stops cleanly on SIGTERM`)
  }
})
