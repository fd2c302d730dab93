// `mtls-proxy [settings] -- COMMAND`: the proxy for the life of one command, which finds it through
// MTLS_PROXY_URL and a generated KUBECONFIG (each context in its namespace, kubectl's cache its
// own); its exit status is ours; signals are passed on. The real CLI, as a child.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { pkiWithFiles } from '../helpers/pki.js'
import { startDemoUpstream } from '../helpers/upstream.js'
import { runCli } from '../helpers/cli.js'
import { cannotRunAsOtherUid } from '../helpers/other-uid.js'
import { ROOT } from '../helpers/root.js'
import { bundledCli } from '../helpers/dist.js'
import { findKubectl, NO_KUBECTL } from '../helpers/kubectl.js'
import { until } from '../helpers/until.js'
import { tempDir } from '../helpers/temp.js'
import { namespacedKubeconfig } from '../helpers/clusters.js'

const { pki, files } = await pkiWithFiles(t)
const upstream = await startDemoUpstream(t, pki)
const settings = ['--upstream', upstream.url, '--cacert', files.cacert, '--cert', files.cert, '--key', files.key]
const node = process.execPath

// What the command sees: its environment, the kubeconfig's text and mode, and requests through the
// proxy with the CA and token it was given, and without the token.
const REPORT = `
const { readFileSync, statSync } = require('node:fs')
const https = require('node:https')
const file = process.env.KUBECONFIG
const ask = (headers) => new Promise((resolve) => https.get(process.env.MTLS_PROXY_URL + '/api/v1/namespaces/default/pods',
  { ca: readFileSync(process.env.MTLS_PROXY_CACERT), headers }, (res) => {
    let body = ''
    res.on('data', (d) => { body += d })
    res.on('end', () => resolve({ status: res.statusCode, kind: JSON.parse(body).kind }))
  }).on('error', (e) => resolve({ error: e.code })))
Promise.all([ask({ authorization: 'Bearer ' + process.env.MTLS_PROXY_TOKEN }), ask({})]).then(([withToken, without]) => {
  console.log(JSON.stringify({ url: process.env.MTLS_PROXY_URL, token: process.env.MTLS_PROXY_TOKEN, cacert: process.env.MTLS_PROXY_CACERT,
    kubeconfig: file, mode: statSync(file).mode & 0o777, caMode: statSync(process.env.MTLS_PROXY_CACERT).mode & 0o777,
    text: readFileSync(file, 'utf8'), withToken, without }))
  process.exit(3)
})
`

t.test('the command finds the proxy, and it alone can use it; its output is its own, its status is ours, and its files are gone after', async (t) => {
  const exit = await runCli([...settings, '--', node, '-e', REPORT])
  t.equal(exit.code, 3, 'the command\'s exit status')
  const lines = exit.stdout.trim().split('\n')
  t.equal(lines.length, 1, 'stdout holds the command\'s output alone: the proxy logs to stderr')
  interface Answer { status: number; kind: string }
  interface Seen { url: string; token: string; cacert: string; kubeconfig: string; mode: number; caMode: number; text: string }
  const seen = JSON.parse(lines[0]!) as Seen & { withToken: Answer; without: Answer }
  t.match(seen.url, /^https:\/\/127\.0\.0\.1:\d+$/, 'HTTPS on a free loopback port')
  t.not(seen.url, 'https://127.0.0.1:8001')
  t.match(seen.withToken, { status: 200, kind: 'PodList' }, 'through the proxy to the API server, with the CA and token it was given')
  t.match(seen.without, { status: 401, kind: 'Status' }, 'and without the token, refused')
  t.match(seen.token, /^[A-Za-z0-9_-]{43}$/, 'a token of 256 random bits')
  t.equal(seen.mode, 0o600)
  t.equal(seen.caMode, 0o600)
  const kubeconfig = parse(seen.text) as Record<string, unknown>
  t.match(kubeconfig, {
    'current-context': 'mtls-proxy',
    clusters: [{ name: 'mtls-proxy', cluster: { server: seen.url, 'certificate-authority-data': /^[A-Za-z0-9+/=]+$/ } }],
    users: [{ name: 'mtls-proxy', user: { token: seen.token } }],
  })
  t.notMatch(seen.text, /client-certificate|client-key|BEGIN/, 'none of the proxy\'s own credentials in it')
  for (const pem of [pki.client.certPem, pki.client.keyPem]) {
    t.notOk(seen.text.includes(Buffer.from(pem).toString('base64').slice(80, 120)), 'not even encoded')
  }
  t.notOk(existsSync(seen.kubeconfig), 'removed afterwards')
  t.notOk(existsSync(seen.cacert), 'the CA file too')
  t.equal(exit.stderr, '', 'and at warn, a good start says nothing')
})

t.test('another account of the machine finds the port and cannot use the proxy', { skip: cannotRunAsOtherUid() }, async (t) => {
  // The command tells the test where the proxy is, then waits to be ended.
  const command = `require('node:fs').writeFileSync(process.argv[1], JSON.stringify({ url: process.env.MTLS_PROXY_URL,
    kubeconfig: process.env.KUBECONFIG, cacert: process.env.MTLS_PROXY_CACERT })); setInterval(() => {}, 1000)`
  const found = join(files.dir, 'found.json')
  const child = spawn(node, [await bundledCli(), ...settings, '--', node, '-e', command, found],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  await until(() => existsSync(found), 15_000)
  const where = JSON.parse(await readFile(found, 'utf8')) as { url: string; kubeconfig: string; cacert: string }
  const port = new URL(where.url).port
  // What uid 65534 can do with the port it found (as with ss -ltn): plain HTTP, HTTPS without a token or with a guess, the files.
  const probe = `
const https = require('node:https'), http = require('node:http'), fs = require('node:fs')
const ask = (mod, opts) => new Promise((resolve) => mod.get({ host: '127.0.0.1', port: ${port}, path: '/api/v1/namespaces/default/pods', ...opts },
  (res) => { res.resume(); resolve(res.statusCode) }).on('error', (e) => resolve(e.code)))
const read = (f) => { try { fs.readFileSync(f); return 'read' } catch (e) { return e.code } }
Promise.all([ask(http, {}), ask(https, { rejectUnauthorized: false }), ask(https, { rejectUnauthorized: false, headers: { authorization: 'Bearer guess' } })])
  .then(([plain, noToken, guessed]) => { console.log(JSON.stringify({ plain, noToken, guessed,
    kubeconfig: read(${JSON.stringify(where.kubeconfig)}), cacert: read(${JSON.stringify(where.cacert)}) })) })
`
  const out = await new Promise<string>((resolve) => {
    // (stderr ignored: tap's process hooks, which it adds to every child, cannot write their report as uid 65534)
    const other = spawn(node, ['-e', probe], { uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'ignore'] })
    let text = ''
    other.stdout.on('data', (d) => { text += d })
    other.on('close', () => resolve(text.trim()))
  })
  const seen = JSON.parse(out) as Record<string, unknown>
  t.not(seen.plain, 200, `plain HTTP is not served (${String(seen.plain)})`)
  t.equal(seen.noToken, 401, 'HTTPS without the token: 401')
  t.equal(seen.guessed, 401, 'with a guessed token: 401')
  t.equal(seen.kubeconfig, 'EACCES', 'the kubeconfig with the token cannot be read')
  t.equal(seen.cacert, 'EACCES', 'nor the CA file')
  child.kill('SIGTERM')
  await exited
})

t.test('kubectl inside it just works', { skip: findKubectl() ? false : NO_KUBECTL }, async (t) => {
  const exit = await runCli([...settings, '--', findKubectl()!, 'get', 'pods', '-o', 'name'], { HOME: files.dir })
  t.equal(exit.code, 0, exit.stderr)
  t.match(exit.stdout, /^pod\//m)
})

interface GeneratedContexts { contexts: Array<{ name: string; context: { namespace?: string } }> }
const namespaces = (text: string) => Object.fromEntries((parse(text) as GeneratedContexts).contexts.map((c) => [c.name, c.context.namespace ?? '']))

t.test('each context of the command\'s kubeconfig keeps the namespace of the context its cluster was started from', async (t) => {
  const file = await namespacedKubeconfig(join(files.dir, 'namespaced.yaml'), upstream.url, files)
  const show = ['--', 'sh', '-c', 'cat "$KUBECONFIG"']
  const one = await runCli(['--kubeconfig', file, '--context', 'staging', ...show])
  t.equal(one.code, 0, 'exits 0', { stderr: one.stderr })
  t.same(namespaces(one.stdout), { 'mtls-proxy': 'kube-system' }, '--context staging: its namespace')
  const all = await runCli(['--kubeconfig', file, '--all-contexts', ...show])
  t.same(namespaces(all.stdout), { 'mtls-proxy': '', plain: '', staging: 'kube-system' }, '--all-contexts: each its own, the root the default\'s (plain, none)')
})

t.test('kubectl inside acts in the context\'s namespace, as kubectl --context would', { skip: findKubectl() ? false : NO_KUBECTL }, async (t) => {
  const file = await namespacedKubeconfig(join(files.dir, 'namespaced-kubectl.yaml'), upstream.url, files)
  const home = { HOME: files.dir }
  // -v=6 shows each URL kubectl asks for.
  const one = await runCli(['--kubeconfig', file, '--context', 'staging', '--', findKubectl()!, 'get', 'pods', '-v=6'], home, 30_000)
  t.equal(one.code, 0, 'exits 0', { stderr: one.stderr })
  t.match(one.stderr, /GET https:\/\/127\.0\.0\.1:\d+\/api\/v1\/namespaces\/kube-system\/pods\?limit=500 200 OK/, 'staging\'s namespace, not default')
  const all = await runCli(['--kubeconfig', file, '--all-contexts', '--', findKubectl()!, '--context', 'staging', 'get', 'pods', '-v=6'], home, 30_000)
  t.equal(all.code, 0, 'exits 0', { stderr: all.stderr })
  t.match(all.stderr, /GET https:\/\/127\.0\.0\.1:\d+\/clusters\/staging\/api\/v1\/namespaces\/kube-system\/pods\?limit=500 200 OK/,
    '--all-contexts, --context staging: the staging cluster, in its namespace')
})

t.test('kubectl inside keeps its cache in the run\'s folder, removed with it: nothing in ~/.kube, nor in the user\'s KUBECACHEDIR',
  { skip: findKubectl() ? false : NO_KUBECTL }, async (t) => {
    const home = await tempDir(t, 'home')
    const theirs = join(home, 'their-cache')
    // What the cache holds once kubectl has run: a discovery folder for this run's port.
    const script = '"$0" get pods -o name >/dev/null && echo "$KUBECACHEDIR" && echo "$KUBECONFIG" && ls "$KUBECACHEDIR/discovery"'
    const exit = await runCli([...settings, '--', 'sh', '-c', script, findKubectl()!], { HOME: home, KUBECACHEDIR: theirs }, 30_000)
    t.equal(exit.code, 0, 'exits 0', { stderr: exit.stderr })
    const [cache, kubeconfig, ...discovery] = exit.stdout.trim().split('\n')
    t.equal(dirname(cache!), dirname(kubeconfig!), 'the cache is in the run\'s private folder, beside its kubeconfig')
    t.match(discovery, [/^127\.0\.0\.1_\d+$/], 'and kubectl used it: a folder for this run\'s port')
    t.notOk(existsSync(cache!), 'removed with the run\'s folder')
    t.notOk(existsSync(join(home, '.kube')), '~/.kube/cache is never made')
    t.notOk(existsSync(theirs), 'nor the KUBECACHEDIR the user set, which would fill with a folder per port as well')
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
  const child = spawn(node, [await bundledCli(), ...settings, '--', node, '-e', handler], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
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
