// `mtls-proxy [settings] -- COMMAND`: the proxy for the life of one command, which finds it through
// MTLS_PROXY_URL and a generated KUBECONFIG; its exit status is ours; signals are passed on; and
// `mtls-proxy kubeconfig` prints the same kubeconfig for a proxy elsewhere. The real CLI, as a child.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { pkiWithFiles } from './helpers/pki.js'
import { startDemoUpstream } from './helpers/upstream.js'
import { ROOT, runCli } from './helpers/cli.js'
import { findKubectl, NO_KUBECTL } from './helpers/kubectl.js'
import { until } from './helpers/until.js'

const { pki, files } = await pkiWithFiles(t)
const upstream = await startDemoUpstream(t, pki)
const settings = ['--upstream', upstream.url, '--cacert', files.cacert, '--cert', files.cert, '--key', files.key]
const node = process.execPath

// What the command sees: its environment, the kubeconfig's text and mode, and a request through the proxy.
const REPORT = `
const { readFileSync, statSync } = require('node:fs')
const file = process.env.KUBECONFIG
fetch(process.env.MTLS_PROXY_URL + '/api/v1/namespaces/default/pods').then(async (res) => {
  console.log(JSON.stringify({ url: process.env.MTLS_PROXY_URL, kubeconfig: file, mode: statSync(file).mode & 0o777,
    text: readFileSync(file, 'utf8'), status: res.status, kind: (await res.json()).kind }))
  process.exit(3)
})
`

t.test('the command finds the proxy, its output is its own, its status is ours, and the kubeconfig is gone after', async (t) => {
  const exit = await runCli([...settings, '--', node, '-e', REPORT])
  t.equal(exit.code, 3, 'the command\'s exit status')
  const lines = exit.stdout.trim().split('\n')
  t.equal(lines.length, 1, 'stdout holds the command\'s output alone: the proxy logs to stderr')
  const seen = JSON.parse(lines[0]!) as { url: string; kubeconfig: string; mode: number; text: string; status: number; kind: string }
  t.match(seen.url, /^http:\/\/127\.0\.0\.1:\d+$/, 'a free loopback port')
  t.not(seen.url, 'http://127.0.0.1:8001')
  t.equal(seen.status, 200)
  t.equal(seen.kind, 'PodList', 'through the proxy to the API server')
  t.equal(seen.mode, 0o600)
  const kubeconfig = parse(seen.text) as Record<string, unknown>
  t.match(kubeconfig, { 'current-context': 'mtls-proxy', clusters: [{ name: 'mtls-proxy', cluster: { server: seen.url } }] })
  t.notMatch(seen.text, /BEGIN|token|client-certificate|client-key/, 'no credentials in it')
  t.notOk(existsSync(seen.kubeconfig), 'removed afterwards')
  t.equal(exit.stderr, '', 'and at warn, a good start says nothing')
})

t.test('kubectl inside it just works', { skip: findKubectl() ? false : NO_KUBECTL }, async (t) => {
  const exit = await runCli([...settings, '--', findKubectl()!, 'get', 'pods', '-o', 'name'], { HOME: files.dir })
  t.equal(exit.code, 0, exit.stderr)
  t.match(exit.stdout, /^pod\//m)
})

t.test('exit statuses: the command\'s, 128+N for a signal, 127 not found, 126 not runnable', async (t) => {
  t.equal((await runCli([...settings, '--', node, '-e', 'process.exit(0)'])).code, 0)
  // (sh, not node: under tap, a node grandchild carries tap's process-info hooks, which catch its SIGTERM)
  const killed = await runCli([...settings, '--', 'sh', '-c', 'kill -TERM $$'])
  t.equal(killed.code, 143, killed.stderr)
  const missing = await runCli([...settings, '--', 'mtls-proxy-no-such-command'])
  t.equal(missing.code, 127)
  t.match(missing.stderr, /cannot run mtls-proxy-no-such-command: command not found/)
  const script = join(files.dir, 'not-executable.sh')
  await writeFile(script, '#!/bin/sh\necho hi\n')
  await chmod(script, 0o644)
  t.equal((await runCli([...settings, '--', script])).code, 126)
  const noInterpreter = join(files.dir, 'no-interpreter.sh')
  await writeFile(noInterpreter, '#!/nonexistent/sh\necho hi\n', { mode: 0o755 })
  const bad = await runCli([...settings, '--', noInterpreter])
  t.equal(bad.code, 126, 'a script whose interpreter is missing: found, not runnable')
  t.match(bad.stderr, /its interpreter \(#!\) was not found/)
})

t.test('SIGTERM, SIGINT and SIGHUP sent to mtls-proxy reach the command', async (t) => {
  const handler = `
for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(s, () => { console.log('got ' + s); if (s === 'SIGTERM') process.exit(7) })
console.log('ready')
setInterval(() => {}, 1000)
`
  const child = spawn(node, ['--import', 'tsx', 'src/cli.ts', ...settings, '--', node, '-e', handler], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { child.kill('SIGKILL') })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  await until(() => out.includes('ready'), 10_000)
  child.kill('SIGHUP')
  await until(() => out.includes('got SIGHUP'), 3_000)
  child.kill('SIGINT')
  await until(() => out.includes('got SIGINT'), 3_000)
  child.kill('SIGTERM')
  t.equal(await exited, 7, 'the command\'s status after it handled SIGTERM')
  t.match(out, /got SIGHUP\ngot SIGINT\ngot SIGTERM/)
})

t.test('a start-up mistake is one line and exit 2, and the command is not run', async (t) => {
  const marker = join(files.dir, 'ran')
  const bad = await runCli(['--upstream', upstream.url, '--cacert', join(files.dir, 'nope.crt'), '--cert', files.cert, '--key', files.key,
    '--', node, '-e', `require('node:fs').writeFileSync(${JSON.stringify(marker)}, '')`])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /^mtls-proxy: --cacert .*nope\.crt: cannot read: no such file\n$/)
  t.notOk(existsSync(marker), 'the command never ran')
  const refusals = [['--unix-socket', [join(files.dir, 'p.sock')]], ['--token-file', [files.cert]], ['--workers', ['2']],
    ['--listen-cert', [files.cert, '--listen-key', files.key]]] as const
  for (const [flag, extra] of refusals) {
    const refused = await runCli([...settings, flag, ...extra, '--', node, '-e', '0'])
    t.equal(refused.code, 2, `${flag} with --`)
    t.match(refused.stderr, new RegExp(`^mtls-proxy: ${flag}.* cannot be used with -- COMMAND`))
  }
  t.match((await runCli([...settings, '--'])).stderr, /nothing to run after --/)
  // A port in the environment is the resident proxy's: the command's proxy still takes a free one.
  const fromEnv = await runCli([...settings, '--', node, '-e', 'console.log(process.env.MTLS_PROXY_URL)'], { MTLS_PROXY_PORT: '1' })
  t.equal(fromEnv.code, 0, fromEnv.stderr)
  t.notMatch(fromEnv.stdout, /:1$/m)
})

t.test('mtls-proxy kubeconfig prints a kubeconfig for a proxy at an address and port', async (t) => {
  const exit = await runCli(['kubeconfig', '--port', '9000'])
  t.equal(exit.code, 0)
  t.match(parse(exit.stdout), {
    kind: 'Config', 'current-context': 'mtls-proxy', clusters: [{ cluster: { server: 'http://127.0.0.1:9000' } }], users: [{ name: 'mtls-proxy', user: {} }],
  })
  t.match((parse((await runCli(['kubeconfig', '--address', '::1'])).stdout) as { clusters: Array<{ cluster: { server: string } }> }).clusters[0]!.cluster.server,
    'http://[::1]:8001')
  t.equal((await runCli(['kubeconfig', '--port', 'x'])).code, 2)
})
