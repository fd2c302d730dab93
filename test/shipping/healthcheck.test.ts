// The image's HEALTHCHECK (dist/healthcheck.js) asks the proxy it belongs to, found as the CLI finds
// its settings: flags, MTLS_PROXY_* environment, config file. It once asked 127.0.0.1:8001 whatever
// the proxy said, and so called a healthy proxy on another port, socket or scheme unhealthy.
import { execFile, spawn } from 'node:child_process'
import { symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { clientFlags } from '../helpers/proxy.js'
import { freePort } from '../helpers/net.js'
import { bundle } from '../helpers/dist.js'
import { startCli } from '../helpers/cli.js'
import { createCA, pkiWithFiles, type Teardown } from '../helpers/pki.js'
import { echoHandler, startUpstream } from '../helpers/upstream.js'
import { until } from '../helpers/until.js'
import { tempDir } from '../helpers/temp.js'

const run = promisify(execFile)
const dist = await bundle()
const { pki, files } = await pkiWithFiles(t)
const upstream = await startUpstream(t, pki, echoHandler)
const credentials = clientFlags(upstream.url, files)

/** The healthcheck's exit code and what it printed, given the settings the proxy was started with. */
async function healthcheck (flags: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stderr: string }> {
  return run(process.execPath, [join(dist, 'dist/healthcheck.js'), ...flags], { env: { PATH: process.env.PATH, ...env }, timeout: 15_000 })
    .then(() => ({ code: 0, stderr: '' }), (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }))
}

const cases: Array<[string, () => Promise<{ flags: string[]; env?: NodeJS.ProcessEnv }>]> = [
  ['a --port flag', async () => ({ flags: [...credentials, '--port', String(await freePort())] })],
  ['a port in the config file', async () => {
    const file = join(files.dir, 'port.yaml')
    await writeFile(file, `port: ${await freePort()}\n`)
    return { flags: [...credentials, '--config', file] }
  }],
  ['MTLS_PROXY_PORT', async () => ({ flags: credentials, env: { MTLS_PROXY_PORT: String(await freePort()) } })],
  ['a Unix socket', async () => {
    const dir = await tempDir(t, 'hc')
    return { flags: [...credentials, '--unix-socket', join(dir, 'p.sock')] }
  }],
  ['HTTPS on the listener', async () => {
    const ca = await createCA('listener CA')
    const pair = await ca.issue({ commonName: 'mtls-proxy', usage: 'server', ipAddresses: ['127.0.0.1'] })
    await writeFile(join(files.dir, 'l.crt'), pair.certPem)
    await writeFile(join(files.dir, 'l.key'), pair.keyPem, { mode: 0o600 })
    return { flags: [...credentials, '--port', String(await freePort()), '--listen-cert', join(files.dir, 'l.crt'), '--listen-key', join(files.dir, 'l.key')] }
  }],
  ['a status listener', async () => ({ flags: [...credentials, '--port', String(await freePort()), '--status-address', `127.0.0.1:${await freePort()}`] })],
]

for (const [name, settings] of cases) {
  t.test(`${name}: healthy while the proxy serves, unhealthy once it stops`, async (t) => {
    const { flags, env = {} } = await settings()
    const proxy = await startCli(t, flags, env, { anyPort: false })
    const up = await healthcheck(flags, env)
    t.equal(up.code, 0, `healthy (${up.stderr.trim()})`)
    proxy.child.kill('SIGTERM')
    await proxy.exited
    const down = await healthcheck(flags, env)
    t.equal(down.code, 1, 'unhealthy once stopped')
    t.match(down.stderr, /\/-\/healthz: /, 'and says what it asked')
  })
}

const asRoot = process.getuid?.() === 0

/**
 * Runs `command` as PID 1 of a PID namespace of its own (a container, as far as /proc/1 goes); the healthcheck inside it.
 * ownNetwork: a network namespace of its own too, with only loopback up, so no port there is open whatever listens on this machine.
 */
async function inContainer (t: Teardown, command: string[], { ownNetwork = false } = {}): Promise<{ code: number; stderr: string }> {
  const namespaces = ['--pid', '--fork', '--kill-child', '--mount-proc', ...(ownNetwork ? ['--net'] : [])]
  const start = ownNetwork ? ['sh', '-c', 'ip link set lo up && exec "$@"', 'sh', ...command] : command
  const container = spawn('unshare', [...namespaces, ...start], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { container.kill('SIGKILL') })
  let out = ''
  container.stdout.on('data', (d: Buffer) => { out += d })
  // Up: a proxy once it says where it serves; anything else once it runs.
  const proxy = command.includes('--upstream')
  await until(async () => (proxy ? out.includes('"listen"') : await run('pgrep', ['-P', String(container.pid)]).then(() => true, () => false)), 15_000)
  const pid = (await run('pgrep', ['-P', String(container.pid)])).stdout.trim()
  t.teardown(() => { try { process.kill(Number(pid), 'SIGKILL') } catch { /* gone already */ } })
  // HEALTHCHECK runs in the container with no flags of its own.
  return run('nsenter', ['-t', pid, '-p', '-m', ...(ownNetwork ? ['-n'] : []), process.execPath, join(dist, 'dist/healthcheck.js')], { env: { PATH: process.env.PATH } })
    .then(() => ({ code: 0, stderr: '' }), (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }))
}

t.test('in a container the proxy is the first process: its flags are read from there', { skip: asRoot ? false : 'needs root for a PID namespace (unshare)' }, async (t) => {
  const port = await freePort()
  const direct = await inContainer(t, [process.execPath, join(dist, 'dist/cli.js'), ...credentials, '--port', String(port)])
  t.equal(direct.code, 0, `healthy: it asked port ${port}, from the proxy's own command line (${direct.stderr.trim()})`)
  // As an image built with `npm install -g` runs it: the bin, a link to dist/cli.js.
  const bin = join(await tempDir(t, 'bin'), 'mtls-proxy')
  await symlink(join(dist, 'dist/cli.js'), bin)
  const other = await freePort()
  const viaBin = await inContainer(t, [process.execPath, bin, ...credentials, '--port', String(other)])
  t.equal(viaBin.code, 0, `healthy through the installed bin too (${viaBin.stderr.trim()})`)
})

t.test('another program as the first process is not taken for the proxy', { skip: asRoot ? false : 'needs root for a PID namespace (unshare)' }, async (t) => {
  const dir = await tempDir(t, 'hc')
  await writeFile(join(dir, 'cli.js'), 'setInterval(() => {}, 1000)\n')
  // In a network of its own: 127.0.0.1:8001 there is closed, whatever answers on this machine's (a demo, kubectl proxy).
  const result = await inContainer(t, [process.execPath, join(dir, 'cli.js'), '--help'], { ownNetwork: true })
  t.equal(result.code, 1, 'unhealthy: no proxy is configured here')
  t.match(result.stderr, /^http:\/\/127\.0\.0\.1:8001\/-\/healthz: connect ECONNREFUSED/, `its own settings, the defaults, were asked, not the program's --help (${result.stderr.trim()})`)
  t.notMatch(result.stderr, /\n\s+at /, 'one line, no stack trace')
})

t.test('a proxy on --port 0 cannot be checked, and says why', async (t) => {
  const result = await healthcheck([...credentials, '--port', '0'])
  t.equal(result.code, 1)
  t.match(result.stderr, /--port 0, a port only it knows/)
})
