// A port in use is said before the slow part of the start (reading credentials, the first probe):
// one line and exit 2, with no line saying the upstream is ready before it, as kubectl proxy does.
// The port is taken first, and a client that connects while the proxy starts is answered once it serves.
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { connect, createServer } from 'node:net'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import t, { type Test } from 'tap'
import { clientFlags } from '../helpers/proxy.js'
import { busyPort, freePort } from '../helpers/net.js'
import { createCA, pkiWithFiles } from '../helpers/pki.js'
import { echoHandler, startUpstream } from '../helpers/upstream.js'
import { runCli, startCli, type Exit } from '../helpers/cli.js'
import { bundledCli } from '../helpers/dist.js'
import { ROOT } from '../helpers/root.js'
import { timed, until } from '../helpers/until.js'

const { pki, files } = await pkiWithFiles(t)

// The first probe's answer comes this late: the start then waits for it (at most a second past the
// handshake), which is what a busy port must not wait behind.
const PROBE_ANSWER_MS = 1_500
const probes: string[] = []
const upstream = await startUpstream(t, pki, (req, res) => {
  if (req.headers['user-agent'] !== 'mtls-proxy-readiness') return echoHandler(req, res)
  probes.push(req.url!)
  setTimeout(() => echoHandler(req, res), PROBE_ANSWER_MS)
})
const flags = clientFlags(upstream.url, files)

const oneLine = (t: Test, exit: Exit, message: RegExp) => {
  t.equal(exit.code, 2, 'exit code 2')
  t.equal(exit.stderr.trimEnd().split('\n').length, 1, `one line: ${exit.stderr.trim()}`)
  t.match(exit.stderr, message)
  t.notMatch(exit.stdout, /ready/, 'no line says ready before it')
}

t.test('a port in use: one line and exit 2 before the first probe, sooner than a start on a free port takes', async (t) => {
  // The same start on a free port: the time it takes to serve, the slow part included.
  const baseline = await timed(async () => {
    const proxy = await startCli(t, flags)
    proxy.child.kill('SIGTERM')
    await proxy.exited
  })
  t.ok(baseline >= 1_000, `a start with a slow probe takes ${baseline} ms`)
  const busy = await busyPort(t)
  const probed = probes.length
  let exit!: Exit
  const took = await timed(async () => { exit = await runCli([...flags, '--port', String(busy)]) })
  oneLine(t, exit, new RegExp(`^mtls-proxy: cannot listen on 127\\.0\\.0\\.1:${busy}: address already in use`))
  t.equal(probes.length, probed, 'the upstream was never asked')
  t.ok(took < baseline, `said in ${took} ms, sooner than a start (${baseline} ms)`)
})

t.test('--status-address in use, --workers with the port in use, a Unix socket in use: each said before any probe', async (t) => {
  const busy = await busyPort(t)
  const probed = probes.length
  oneLine(t, await runCli([...flags, '--port', '0', '--status-address', `127.0.0.1:${busy}`]),
    new RegExp(`^mtls-proxy: cannot listen on --status-address 127\\.0\\.0\\.1:${busy}: address already in use`))
  oneLine(t, await runCli([...flags, '--port', String(busy), '--workers', '2']),
    new RegExp(`^mtls-proxy: cannot listen on 127\\.0\\.0\\.1:${busy}: address already in use`))
  const socketPath = join(files.dir, 'in-use.sock')
  const live = createServer()
  await new Promise<void>((resolve) => live.listen(socketPath, resolve))
  t.teardown(() => new Promise((resolve) => live.close(resolve)))
  oneLine(t, await runCli([...flags, '--unix-socket', socketPath]), /^mtls-proxy: --unix-socket .*in-use\.sock is in use by a running process/)
  t.equal(probes.length, probed, 'the upstream was never asked')
})

t.test('a client that connects while the proxy starts is answered once it serves, over HTTP and HTTPS', async (t) => {
  const listenerCa = await createCA('listener CA')
  const listener = await listenerCa.issue({ commonName: 'mtls-proxy', usage: 'server', ipAddresses: ['127.0.0.1'] })
  await writeFile(join(files.dir, 'listener.crt'), listener.certPem)
  await writeFile(join(files.dir, 'listener.key'), listener.keyPem, { mode: 0o600 })
  const https = ['--listen-cert', join(files.dir, 'listener.crt'), '--listen-key', join(files.dir, 'listener.key')]
  for (const [scheme, extra] of [['http', []], ['https', https]] as const) {
    const port = await freePort()
    const child = spawn(process.execPath, [await bundledCli(), ...flags, ...extra, '--port', String(port)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    const exited = new Promise((resolve) => child.on('exit', resolve))
    // Taken at once: a connection succeeds while the first probe waits for its answer.
    const agent = new Agent({ connect: { ca: listenerCa.certPem } })
    t.teardown(() => agent.close())
    await until(() => new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1')
      socket.once('connect', () => { socket.destroy(); resolve(true) })
      socket.once('error', () => resolve(false))
    }), 10_000)
    const asked = Date.now()
    const answer = await request(`${scheme}://127.0.0.1:${port}/-/healthz`, { dispatcher: agent })
    t.equal(answer.statusCode, 200, `${scheme}: answered`)
    t.equal(await answer.body.text(), 'ok')
    // (lines are written behind the requests: the serving line may come a moment after the answer)
    const servingLine = () => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { listen?: string; time: number }).find((l) => l.listen)
    await until(() => servingLine() !== undefined, 5_000)
    const serving = servingLine()
    t.ok(serving && serving.time >= asked, `${scheme}: asked before the proxy served (${serving ? serving.time - asked : '?'} ms later), answered after`)
    child.kill('SIGTERM')
    await exited
  }
})
