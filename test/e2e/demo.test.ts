// npm run demo, as a newcomer runs it: it serves, one Ctrl-C (to the whole process group, as a
// terminal sends it, and passed on by npm too) ends it cleanly and leaves nothing behind (its
// throwaway PKI holds a private key), and a port in use (a kubectl proxy's 8001) is one line that
// says how to run it elsewhere, before anything is printed that would reach the wrong server.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import t, { type Test } from 'tap'
import { ROOT } from '../helpers/root.js'
import { get } from '../helpers/http.js'
import { busyPort } from '../helpers/net.js'
import { until } from '../helpers/until.js'
import { pkiWithFiles } from '../helpers/pki.js'
import { startProxy } from '../helpers/proxy.js'
import { startDemoUpstream } from '../helpers/upstream.js'
import { KEEP, PodTicker } from '../../src/demo/ticker.js'

function startDemo (t: Test, args: string[]) {
  // In a process group of its own, npm at its head, as a terminal runs `npm run demo`.
  const demo = spawn('npm', ['run', '--silent', 'demo', '--', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  const output = { out: '', err: '' }
  demo.stdout.on('data', (d: Buffer) => { output.out += d.toString() })
  demo.stderr.on('data', (d: Buffer) => { output.err += d.toString() })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => demo.on('close', (code, signal) => resolve({ code, signal })))
  // The proxy runs in a group of its own, which only the demo stops: asked first, then killed.
  const signal = (name: NodeJS.Signals) => { try { process.kill(-demo.pid!, name) } catch { /* all gone */ } }
  t.teardown(async () => {
    signal('SIGTERM')
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))])
    signal('SIGKILL')
  })
  return { demo, output, exited }
}

t.test('the demo serves through the proxy; one Ctrl-C to the process group stops it cleanly and removes its key', async (t) => {
  const { demo, output, exited } = startDemo(t, ['--port', '0'])
  await until(() => /Try, in another terminal/.test(output.err), 30_000)
  const url = /curl (http:\/\/127\.0\.0\.1:\d+)\/api/.exec(output.err)![1]!
  t.equal((await get(`${url}/api/v1/namespaces/default/pods`)).status, 200, 'the Try commands are printed once the port is the proxy\'s')
  const dir = /files in (\S+)/.exec(output.err)![1]!
  t.ok(existsSync(`${dir}/client.key`), 'the demo key is on disk while it runs')
  process.kill(-demo.pid!, 'SIGINT')
  await exited
  t.notMatch(output.out + output.err, /second SIGINT|ERROR|"level":50/, 'no error')
  t.match(output.out, /"msg":"SIGINT: shutting down/, 'the proxy heard SIGINT')
  t.match(output.out, /"msg":"stopped"/, 'and stopped gracefully')
  t.notOk(existsSync(dir), `${dir} is gone after Ctrl-C`)
})

t.test('a port in use (a kubectl proxy on 8001): one line naming `npm run demo -- --port N`, exit 2, nothing else printed', async (t) => {
  const busy = await busyPort(t)
  const { output, exited } = startDemo(t, ['--port', String(busy)])
  const { code } = await exited
  t.equal(code, 2, 'exit code 2')
  const lines = output.err.trimEnd().split('\n')
  t.equal(lines.length, 1, `one line: ${output.err.trim()}`)
  t.match(lines[0], new RegExp(`^demo: 127\\.0\\.0\\.1:${busy} is in use .*npm run demo -- --port (\\d+)$`))
  t.notMatch(output.err, /Try|curl|kubectl --server/, 'no command that would reach whatever holds the port')
  t.equal(output.out, '', 'no proxy started')
  const suggested = Number(/--port (\d+)$/.exec(lines[0]!)![1])
  t.not(suggested, busy, 'another port is suggested')
})

t.test('left running, the demo keeps a few pods, not a new one every 5 s for ever: through the proxy', async (t) => {
  const { pki, files } = await pkiWithFiles(t)
  const api = await startDemoUpstream(t, pki)
  const proxy = await startProxy(t, api.url, files)
  const demoPods = async () => (await get(`${proxy.url}/api/v1/namespaces/default/pods`)).json<{ items: Array<{ metadata: { name: string } }> }>()
    .items.map((p) => p.metadata.name).filter((name) => name.startsWith('demo-'))
  const ticker = new PodTicker(api, 20)
  t.teardown(() => ticker.stop())
  ticker.start()
  await until(async () => (await demoPods()).includes(`demo-${KEEP + 5}`), 10_000)
  ticker.stop()
  const left = await demoPods()
  t.ok(left.length <= KEEP, `${left.length} demo pods after ${KEEP + 5} ticks: ${left.join(', ')}`)
  t.notOk(left.includes('demo-1'), 'the oldest is gone')
})
