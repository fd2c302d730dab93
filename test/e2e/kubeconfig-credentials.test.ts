// Every credential a kubeconfig holds, as kubectl takes it: $KUBECONFIG merged, the default
// ~/.kube/config, --context/--cluster/--user; bearer tokens and token files; exec plugins that hand
// out certificates or tokens, renewed before they expire without dropping an open watch; and
// proxy-url through a CONNECT proxy. Real sockets and TLS throughout; the plugins are small scripts.
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import { get as httpGet, type IncomingMessage, type ServerResponse } from 'node:http'
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net'
import { existsSync } from 'node:fs'
import { readFile, writeFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { stringify } from 'yaml'
import { pkiWithFiles, type Teardown } from '../helpers/pki.js'
import { settingsIn } from '../helpers/settings.js'
import { startProxy } from '../helpers/proxy.js'
import { get } from '../helpers/http.js'
import { runCli, startCli } from '../helpers/cli.js'
import { until } from '../helpers/until.js'
import { caller, whoAmIHandler, type Caller } from '../helpers/upstream.js'
import { sourceOf } from '../../src/credentials/source.js'
import { proxyFor } from '../../src/upstream/connect-proxy.js'
import { renewalTime } from '../../src/credentials/exec.js'

const { pki, files } = await pkiWithFiles(t)
const dir = files.dir
const b64 = (s: string) => Buffer.from(s).toString('base64')

const { config, load } = settingsIn(dir)

async function write (name: string, doc: unknown): Promise<string> {
  const file = join(dir, name)
  await writeFile(file, typeof doc === 'string' ? doc : stringify(doc), { mode: 0o600 })
  return file
}

/**
 * An API server over TLS that asks for a client certificate but does not insist (a token alone
 * may do), and tells who called: the certificate's CN and the Authorization header. `/watch`
 * streams a line every 100 ms until the client goes; `accept` decides 401s.
 */
async function startApiServer (tt: Teardown, accept: (seen: Caller) => boolean = () => true) {
  const seen: Caller[] = []
  let closedWatches = 0
  const server: HttpsServer = createHttpsServer({
    ca: pki.ca.certPem, cert: pki.server.certPem, key: pki.server.keyPem, requestCert: true, rejectUnauthorized: false,
  }, (req: IncomingMessage, res: ServerResponse) => {
    const who = caller(req)
    if (req.url !== '/version') seen.push(who)
    if (req.url !== '/version' && !accept(who)) {
      res.writeHead(401, { 'content-type': 'application/json' })
      res.end('{"kind":"Status","code":401}')
      return
    }
    if (req.url?.startsWith('/watch')) {
      res.writeHead(200, { 'content-type': 'application/json' })
      const timer = setInterval(() => res.write(`${JSON.stringify(who)}\n`), 100)
      res.on('close', () => { clearInterval(timer); closedWatches++ })
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ ...who, encoding: req.headers['accept-encoding'] ?? null }))
  })
  const sockets = new Set<Socket>()
  server.on('connection', (s: Socket) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  tt.teardown(() => { for (const s of sockets) s.destroy(); server.close() })
  return { url: `https://127.0.0.1:${port}`, port, seen, closedWatches: () => closedWatches }
}

function kubeDoc (server: string, users: Record<string, Record<string, unknown>>, current = Object.keys(users)[0]) {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': current,
    clusters: [{ name: 'c', cluster: { server, 'certificate-authority-data': b64(pki.ca.certPem) } }],
    users: Object.entries(users).map(([name, user]) => ({ name, user })),
    contexts: Object.keys(users).map((name) => ({ name, context: { cluster: 'c', user: name } })),
  }
}

/** startProxy with the server, CA and credentials taken from this kubeconfig alone. */
function proxyWith (tt: Teardown, upstreamUrl: string, kubeconfig: string, extra: string[] = []) {
  return startProxy(tt, upstreamUrl, files, ['--kubeconfig', kubeconfig, '--cacert', '', '--cert', '', '--key', '', ...extra])
}

t.test('$KUBECONFIG merges as kubectl does; --context, --cluster, --user pick; the default file is found', async (t) => {
  const first = await write('first.yaml', {
    'current-context': 'one',
    clusters: [{ name: 'k1', cluster: { server: 'https://10.0.0.1:6443', 'certificate-authority-data': b64(pki.ca.certPem) } }],
    users: [{ name: 'u1', user: { token: 'token-of-u1' } }],
    contexts: [{ name: 'one', context: { cluster: 'k1', user: 'u1' } }],
  })
  await mkdir(join(dir, 'sub'), { recursive: true })
  await writeFile(join(dir, 'sub', 'u2.token'), 'token-of-u2\n')
  const second = await write('sub/second.yaml', {
    'current-context': 'two',
    clusters: [
      { name: 'k1', cluster: { server: 'https://10.0.0.99:6443' } },
      { name: 'k2', cluster: { server: 'https://10.0.0.2:6443', 'certificate-authority': '../ca.crt' } },
    ],
    users: [{ name: 'u1', user: { token: 'shadowed' } }, { name: 'u2', user: { token: 'not-the-file', tokenFile: 'u2.token' } }],
    contexts: [{ name: 'one', context: { cluster: 'k2', user: 'u2' } }, { name: 'two', context: { cluster: 'k2', user: 'u2' } }],
  })
  const env = { KUBECONFIG: [join(dir, 'absent.yaml'), first, second].join(':') }
  const merged = await load([], env)
  t.equal(merged.server.url.origin, 'https://10.0.0.1:6443', 'the first file to set current-context, and cluster k1, wins')
  t.equal(merged.bearerToken, 'token-of-u1', 'user u1 from the first file, whole')
  t.ok(merged.sources.watch.includes(second), 'every file of the list is watched')
  const two = await load(['--context', 'two'], env)
  t.equal(two.server.url.origin, 'https://10.0.0.2:6443')
  t.equal(two.bearerToken, 'token-of-u2', 'tokenFile relative to the file that holds the user, trimmed; with token, the file wins')
  t.equal(two.caCertificates.length, 1, 'certificate-authority relative to the file that holds the cluster')
  const picked = await load(['--context', 'one', '--cluster', 'k2', '--user', 'u2'], env)
  t.equal(picked.server.url.origin, 'https://10.0.0.2:6443', '--cluster replaces the context\'s cluster')
  t.equal(picked.bearerToken, 'token-of-u2', '--user replaces the context\'s user')
  await t.rejects(load(['--context', 'nope'], env), { message: /no context named 'nope' \(--context\); it has 'one', 'two'$/ })
  await t.rejects(load(['--user', 'nobody'], env), { message: /no user named 'nobody' \(--user\); it has 'u1', 'u2'$/ })

  const home = join(dir, 'home')
  await mkdir(join(home, '.kube'), { recursive: true })
  await writeFile(join(home, '.kube', 'config'), await readFile(first))
  t.equal((await load([], { HOME: home })).bearerToken, 'token-of-u1', 'no flags: ~/.kube/config')
  const none = await runCli([], { HOME: join(dir, 'nowhere'), KUBECONFIG: '' })
  t.equal(none.code, 2)
  t.match(none.stderr.trim(), new RegExp(`^mtls-proxy: no kubeconfig found: looked for ~/\\.kube/config \\(${join(dir, 'nowhere', '.kube', 'config')}\\); ` +
    'give --kubeconfig FILE, set KUBECONFIG, or give --upstream, --cacert, --cert and --key$'), 'one line, naming what was looked for')
})

t.test('a token: sent as Bearer by the proxy, the caller\'s own never forwarded, the token never logged', async (t) => {
  const api = await startApiServer(t, (s) => s.authorization === 'Bearer s3cret-token-value')
  const kubeconfig = await write('token.yaml', kubeDoc(api.url, { tok: { token: 's3cret-token-value' } }))
  const proxy = await proxyWith(t, api.url, kubeconfig)
  const res = await get(`${proxy.url}/api/v1/pods`, { headers: { authorization: 'Bearer the-callers-own' } })
  t.equal(res.status, 200)
  t.same(res.json().authorization, 'Bearer s3cret-token-value', 'the proxy\'s token, not the caller\'s')
  t.equal(res.json().cn, undefined, 'no client certificate: a token alone is served, still over verified TLS')
  const status = await get(`${proxy.url}/-/status`)
  t.notMatch(status.body, /s3cret/, '/-/status never shows the token')
  t.match(status.json().identity, /the token of user 'tok'/)
  t.notMatch(proxy.logText(), /s3cret/, 'no log line holds the token')

  const doc = kubeDoc(api.url, { tok: { token: 's3cret-token-value' } })
  const plain = await write('no-gzip.yaml', { ...doc, clusters: [{ name: 'c', cluster: { ...doc.clusters[0]!.cluster, 'disable-compression': true } }] })
  const uncompressed = await proxyWith(t, api.url, plain)
  t.equal((await get(`${uncompressed.url}/x`, { headers: { 'accept-encoding': 'gzip' } })).json().encoding, null, 'disable-compression: no gzip asked of the server')
  t.equal((await get(`${proxy.url}/x`, { headers: { 'accept-encoding': 'gzip' } })).json().encoding, 'gzip', 'otherwise the caller\'s Accept-Encoding passes')
})

t.test('a kubeconfig\'s insecure-skip-tls-verify is honoured, as kubectl does, and said at start', async (t) => {
  const { startCli } = await import('../helpers/cli.js')
  const api = await startApiServer(t)
  const doc = kubeDoc(api.url, { tok: { token: 'some-token-value' } })
  const file = await write('insecure.yaml', { ...doc, clusters: [{ name: 'c', cluster: { server: api.url, 'insecure-skip-tls-verify': true } }] })
  const proxy = await startCli(t, ['--kubeconfig', file])
  t.equal((await get(`${proxy.url}/x`)).json().authorization, 'Bearer some-token-value', 'served without a CA')
  t.ok(proxy.logs().some((l) => l.level === 40 && /^the kubeconfig sets insecure-skip-tls-verify: the API server's certificate is NOT verified/.test(String(l.msg))))
})

t.test('a tokenFile that rotates: the new token is in use within seconds', async (t) => {
  const api = await startApiServer(t)
  await mkdir(join(dir, 'projected'), { recursive: true })
  const tokenFile = join(dir, 'projected', 'token')
  await writeFile(tokenFile, '  first-token\n')
  const kubeconfig = await write('tokenfile.yaml', kubeDoc(api.url, { sa: { tokenFile } }))
  const proxy = await proxyWith(t, api.url, kubeconfig)
  t.equal((await get(`${proxy.url}/x`)).json().authorization, 'Bearer first-token', 'surrounding whitespace trimmed')
  await writeFile(tokenFile, 'second-token\n')
  // Its folder is watched and the file polled every POLL_MS (src/util/file-watch.ts): in use by the second poll at the latest.
  const POLL_MS = 5_000
  const took = await until(async () => (await get(`${proxy.url}/x`)).json().authorization === 'Bearer second-token', 3 * POLL_MS)
  t.ok(took < 2 * POLL_MS, `the rotated token in use after ${took} ms`)
  t.notMatch(proxy.logText(), /first-token|second-token/, 'no log line holds either token')
})

// An exec plugin: each run hands out `N.json` of its folder (the Nth run), else `last.json`, with
// `expiresIn` seconds turned into an expirationTimestamp; from the run a `fail-from` file names on, it
// fails. Every run's
// KUBERNETES_EXEC_INFO is appended to `runs`.
const PLUGIN = `
import { appendFileSync, existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
const dir = process.env.PLUGIN_DIR
const runs = join(dir, 'runs')
const n = (existsSync(runs) ? readFileSync(runs, 'utf8').split('\\n').filter(Boolean).length : 0) + 1
appendFileSync(runs, process.env.KUBERNETES_EXEC_INFO + '\\n')
process.stderr.write('plugin run ' + n + '\\n')
if (existsSync(join(dir, 'fail-from')) && n >= Number(readFileSync(join(dir, 'fail-from'), 'utf8'))) {
  process.stderr.write('the identity provider is down\\n')
  process.exit(1)
}
const file = existsSync(join(dir, n + '.json')) ? join(dir, n + '.json') : join(dir, 'last.json')
const { expiresIn, ...status } = JSON.parse(readFileSync(file, 'utf8'))
if (expiresIn) status.expirationTimestamp = new Date(Date.now() + expiresIn * 1000).toISOString()
process.stdout.write(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status }))
`

async function plugin (name: string, credentials: Record<string, Record<string, unknown> | number>) {
  const folder = join(dir, name)
  await mkdir(folder, { recursive: true })
  await writeFile(join(folder, 'plugin.mjs'), PLUGIN)
  for (const [file, status] of Object.entries(credentials)) await writeFile(join(folder, file), JSON.stringify(status))
  const runs = async () => (await readFile(join(folder, 'runs'), 'utf8').catch(() => '')).split('\n').filter(Boolean)
    .map((l) => JSON.parse(l) as { spec: Record<string, unknown> })
  const exec = {
    apiVersion: 'client.authentication.k8s.io/v1',
    command: process.execPath,
    args: [join(folder, 'plugin.mjs')],
    env: [{ name: 'PLUGIN_DIR', value: folder }],
    provideClusterInfo: true,
    interactiveMode: 'IfAvailable',
  }
  return { folder, exec, runs }
}

t.test('an exec plugin\'s certificate that expires in seconds is renewed before, and an open watch is not dropped', async (t) => {
  const api = await startApiServer(t)
  // Certificates of an hour, as plugins hand out: days-left warnings would be noise.
  const hour = { notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3_600_000) }
  const one = await pki.ca.issue({ commonName: 'exec-one', usage: 'client', ...hour })
  const two = await pki.ca.issue({ commonName: 'exec-two', usage: 'client', ...hour })
  const { exec, runs } = await plugin('cert-plugin', {
    '1.json': { clientCertificateData: one.certPem, clientKeyData: one.keyPem, expiresIn: 3 },
    'last.json': { clientCertificateData: two.certPem, clientKeyData: two.keyPem, expiresIn: 3600 },
  })
  const kubeconfig = await write('exec-cert.yaml', kubeDoc(api.url, { ex: { exec } }))
  const proxy = await proxyWith(t, api.url, kubeconfig)
  t.equal((await get(`${proxy.url}/whoami`)).json().cn, 'exec-one', 'the plugin\'s first certificate')
  // A watch, read line by line, on a connection of its own.
  const lines: Caller[] = []
  const watch = httpGet(`${proxy.url}/watch?watch=true`, { agent: false }, (res) => {
    let buffered = ''
    res.on('data', (chunk: Buffer) => {
      buffered += chunk.toString()
      const parts = buffered.split('\n')
      buffered = parts.pop()!
      lines.push(...parts.map((l) => JSON.parse(l) as Caller))
    })
  })
  watch.on('error', () => {})
  await until(() => lines.length > 0)
  const took = await until(async () => (await get(`${proxy.url}/whoami`)).json().cn === 'exec-two', 5_000)
  t.pass(`renewed: new requests go out as exec-two ${took} ms later, before the first expired`)
  const before = lines.length
  await until(() => lines.length > before + 3, 2_000)
  t.ok(lines.every((l) => l.cn === 'exec-one'), 'the open watch goes on, on its connection made with the first certificate')
  watch.destroy()
  await until(() => api.closedWatches() === 1, 2_000)
  t.pass('the caller\'s going ends the watch upstream')
  const info = await runs()
  t.ok(info.length >= 2, `the plugin ran ${info.length} times`)
  t.match(info[0]!, { apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', spec: { interactive: false, cluster: { server: api.url } } },
    'KUBERNETES_EXEC_INFO: not interactive, and the cluster, as provideClusterInfo asks')
  t.ok(proxy.logs.some((l) => l.level === 40 && l.msg === 'exec plugin: plugin run 1'), 'the plugin\'s stderr is logged at warn')
  t.notMatch(proxy.logText(), /PRIVATE KEY/, 'the key it handed out is never logged')
  t.notOk(proxy.logs.some((l) => (l.level as number) >= 40 && /days left/.test(String(l.msg))), 'a plugin\'s certificate is renewed by it: no days-left warnings')
})

t.test('a token plugin: a 401 is the caller\'s, and the plugin runs again, at most once per 10 s', async (t) => {
  let rejectAll = false
  const api = await startApiServer(t, (s) => !rejectAll && s.authorization === 'Bearer tok-2')
  const { exec, runs } = await plugin('token-plugin', { '1.json': { token: 'tok-1' }, 'last.json': { token: 'tok-2' } })
  const kubeconfig = await write('exec-token.yaml', kubeDoc(api.url, { ex: { exec } }))
  const proxy = await proxyWith(t, api.url, kubeconfig)
  const refused = await get(`${proxy.url}/first`)
  t.equal(refused.status, 401, 'the caller gets the 401 as it came')
  t.equal(api.seen.filter((s) => s.url === '/first').length, 1, 'and the request is not retried')
  await until(async () => (await get(`${proxy.url}/second`)).status === 200, 3_000)
  t.equal((await runs()).length, 2, 'the plugin ran again after the 401')
  rejectAll = true
  t.equal((await get(`${proxy.url}/third`)).status, 401)
  t.equal((await get(`${proxy.url}/fourth`)).status, 401)
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal((await runs()).length, 2, 'not again within 10 s of the last run')
  t.notMatch(proxy.logText(), /tok-1|tok-2/, 'no log line holds a token')
})

t.test('an exec plugin that is missing: its installHint in the one-line error, exit 2', async (t) => {
  const kubeconfig = await write('exec-missing.yaml', kubeDoc('https://127.0.0.1:9', {
    ex: { exec: { apiVersion: 'client.authentication.k8s.io/v1beta1', command: 'mtls-proxy-no-such-plugin', installHint: 'Install it with:\n  brew install no-such-plugin\n' } },
  }))
  const exit = await runCli(['--kubeconfig', kubeconfig])
  t.equal(exit.code, 2)
  t.match(exit.stderr, /^mtls-proxy: the exec plugin of user 'ex' of context 'ex' \(kubeconfig .*\): command 'mtls-proxy-no-such-plugin' not found; Install it with: brew install no-such-plugin\n$/)
})

t.test('a SIGHUP while a slow plugin runs at start does not end the proxy; the reload follows', async (t) => {
  const { startCli } = await import('../helpers/cli.js')
  const api = await startApiServer(t)
  const folder = join(dir, 'slow-plugin')
  await mkdir(folder, { recursive: true })
  const started = join(folder, 'started')
  const script = join(folder, 'plugin.mjs')
  await writeFile(script, `
import { writeFileSync } from 'node:fs'
writeFileSync(${JSON.stringify(started)}, '')
setTimeout(() => process.stdout.write(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: 'slow-token' } })), 1500)
`)
  const kubeconfig = await write('exec-slow.yaml', kubeDoc(api.url, {
    ex: { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args: [script] } },
  }))
  let child: import('node:child_process').ChildProcess | undefined
  const starting = startCli(t, ['--kubeconfig', kubeconfig], {}, { onSpawn: (c) => { child = c } })
  await until(() => existsSync(started), 10_000)
  child!.kill('SIGHUP')
  const proxy = await starting
  t.equal((await get(`${proxy.url}/x`)).json().authorization, 'Bearer slow-token', 'serving')
  await until(() => proxy.logs().some((l) => /token unchanged/.test(String(l.msg))), 3_000)
  t.pass('the reload asked for during start-up ran once the credentials were read')
})

t.test('an exec plugin that fails later: the last good credential stays in use, and /-/readyz says why once it expired', async (t) => {
  const api = await startApiServer(t)
  const { exec, runs } = await plugin('failing-plugin', { 'last.json': { token: 'tok-good', expiresIn: 2 }, 'fail-from': 2 })
  const kubeconfig = await write('exec-failing.yaml', kubeDoc(api.url, { ex: { exec } }))
  const proxy = await proxyWith(t, api.url, kubeconfig)
  await until(async () => (await runs()).length >= 2, 5_000)
  const readyz = await until(async () => (await get(`${proxy.url}/-/readyz`)).status === 503, 5_000).then(() => get(`${proxy.url}/-/readyz`))
  t.match(readyz.json().message, /^not ready: the exec plugin's credential expired on .*; renewing it failed: the exec plugin of user 'ex' .* exited with status 1/)
  t.equal((await get(`${proxy.url}/still`)).json().authorization, 'Bearer tok-good', 'requests still carry the last good token')
  t.ok(proxy.logs.some((l) => l.level === 40 && l.msg === 'exec plugin: the identity provider is down'), 'the plugin\'s stderr is logged')
  t.ok(proxy.logs.some((l) => l.level === 50 && /token reload failed/.test(String(l.msg))), 'the failure is logged as an error')
})

t.test('renewal comes at 80 % of a credential\'s life, and no later than 5 s before its end', async (t) => {
  const at = (obtained: number, life: number) => (renewalTime(new Date(obtained), new Date(obtained + life)).getTime() - obtained)
  t.equal(at(0, 3_600_000), 2_880_000, 'an hour: after 48 minutes')
  t.equal(at(0, 20_000), 15_000, '20 s: 5 s before the end')
  t.equal(at(0, 4_000), 2_000, '4 s: half way')
})

/** A CONNECT proxy: records each CONNECT and its Proxy-Authorization; `refuse` answers 407 with that reason phrase. */
async function startConnectProxy (tt: Teardown, refuse: false | string = false) {
  const seen: Array<{ target: string; auth: string | undefined }> = []
  const { createServer } = await import('node:http')
  const server = createServer((_req, res) => { res.writeHead(405); res.end() })
  const sockets = new Set<Socket>()
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    seen.push({ target: req.url ?? '', auth: req.headers['proxy-authorization'] })
    sockets.add(client)
    client.on('error', () => {})
    if (refuse !== false) {
      client.end(`HTTP/1.1 407 ${refuse}\r\n\r\n`)
      return
    }
    const [host, port] = (req.url ?? '').split(':') as [string, string]
    const up = netConnect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      up.write(head)
      up.pipe(client)
      client.pipe(up)
    })
    sockets.add(up)
    up.on('error', () => client.destroy())
    client.on('close', () => up.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  tt.teardown(() => { for (const s of sockets) s.destroy(); server.close() })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen }
}

t.test('proxy-url: every connection goes through the CONNECT proxy, with Proxy-Authorization from its URL', async (t) => {
  const { startTunnelUpstream } = await import('../helpers/tunnel-upstream.js')
  const { upstream: api, upgrades } = await startTunnelUpstream(t, pki, whoAmIHandler)
  const via = await startConnectProxy(t)
  const user = { 'client-certificate': files.cert, 'client-key': files.key }
  const doc = kubeDoc(api.url, { u: user })
  const withProxy = (proxyUrl: string) => ({ ...doc, clusters: [{ name: 'c', cluster: { ...doc.clusters[0]!.cluster, 'proxy-url': proxyUrl } }] })
  const kubeconfig = await write('proxied.yaml', withProxy(via.url.replace('http://', 'http://jane:p%40ss@')))
  const proxy = await proxyWith(t, api.url, kubeconfig)
  t.equal((await get(`${proxy.url}/whoami`)).json().cn, 'demo-admin', 'mutual TLS inside the tunnel')
  t.ok(via.seen.length >= 1)
  t.ok(via.seen.every((s) => s.target === `127.0.0.1:${api.port}`), 'CONNECT to the API server')
  t.equal(via.seen[0]!.auth, `Basic ${b64('jane:p@ss')}`, 'the URL\'s user and password as Basic, decoded')
  const connects = via.seen.length
  t.match(await rawUpgrade(proxy.port), /^HTTP\/1\.1 101 /, 'an exec tunnel goes through the proxy too')
  t.ok(via.seen.length > connects, 'its own CONNECT')
  t.equal(upgrades[0]?.cn, 'demo-admin', 'with the client certificate')
  t.notMatch(proxy.logText(), /p@ss|p%40ss/, 'the proxy\'s password is never logged')

  const refusing = await startConnectProxy(t, 'Proxy Authentication Required')
  const refusedConfig = await write('proxy-refuses.yaml', withProxy(refusing.url))
  const refused = await proxyWith(t, api.url, refusedConfig)
  const res = await get(`${refused.url}/whoami`)
  t.equal(res.status, 502)
  t.match(res.json(), { kind: 'Status', code: 502, message: new RegExp(`proxy ${refusing.url} refused CONNECT to 127\\.0\\.0\\.1:${api.port}: 407`) })

  // A reason phrase is the proxy's to choose: long, and with what would forge log lines or a terminal's colours.
  const forging = await startConnectProxy(t, `Denied\t\x1b[31m${'x'.repeat(8_000)}","level":60,"msg":"forged`)
  const forged = await proxyWith(t, api.url, await write('proxy-forges.yaml', withProxy(forging.url)))
  const answer = (await get(`${forged.url}/whoami`)).json<{ message: string }>().message
  t.match(answer, /: 407 Denied\?\?\[31mx+/, 'the reason phrase, its control characters replaced')
  t.ok(answer.length < 300, `bounded (${answer.length} characters)`)
  await until(() => forged.logs.some((l) => l.msg === 'request' && l.status === 502))
  const line = forged.logText().split('\n').find((l) => l.includes('refused CONNECT'))!
  t.notMatch(line, /\\u001b|\\t|xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx/, 'nor in the log')
})

async function rawUpgrade (port: number): Promise<string> {
  return await new Promise((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1', () => socket.write([
      'GET /api/v1/namespaces/default/pods/web/exec?command=sh HTTP/1.1', 'Host: 127.0.0.1', 'Connection: Upgrade', 'Upgrade: websocket',
      'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Protocol: v5.channel.k8s.io', '', ''].join('\r\n')))
    let answer = ''
    socket.on('data', (d: Buffer) => {
      answer += d.toString('latin1')
      if (answer.includes('\r\n\r\n')) {
        socket.destroy()
        resolve(answer)
      }
    })
    socket.on('error', reject)
    setTimeout(() => { socket.destroy(); reject(new Error(`no answer: ${answer}`)) }, 5_000)
  })
}

t.test('HTTPS_PROXY and NO_PROXY are read from the environment at start (how they are read: test/unit/upstream/connect-proxy.test.ts)', async (t) => {
  const c = config(['--upstream', 'https://k8s.example.org', '--cacert', files.cacert, '--cert', files.cert, '--key', files.key], { HTTPS_PROXY: 'http://p:1', NO_PROXY: 'example.org' })
  t.equal((await sourceOf(c.credentials).load(new Date())).server.proxy, undefined, 'the environment is read at start, NO_PROXY included')
})

t.test('a plugin is asked again after it handed back the same credential no sooner than 10 s, and a failure is not re-run at once', async (t) => {
  const { ExecCredentials } = await import('../../src/credentials/exec.js')
  const t0 = Date.now()
  const expires = new Date(t0 + 30_000).toISOString()
  const { exec, runs } = await plugin('same-token-plugin', { 'last.json': { token: 'same', expirationTimestamp: expires }, 'fail-from': 3 })
  const config = { ...exec, cluster: {}, label: 'the test plugin', installHint: undefined, interactiveMode: undefined }
  const credentials = new ExecCredentials(undefined)
  const first = await credentials.get(config, new Date(t0), false)
  t.equal(first.refreshAt!.getTime(), t0 + 24_000, 'renewal at 80 % of its life')
  t.equal((await credentials.get(config, new Date(t0 + 20_000), false)).token, 'same')
  t.equal((await runs()).length, 1, 'not due: not run')
  const again = await credentials.get(config, new Date(t0 + 25_000), false)
  t.equal(again.refreshAt!.getTime(), t0 + 30_000, 'the same credential back: asked again no sooner than 10 s later (here: at its end)')
  t.equal((await runs()).length, 2)
  await t.rejects(credentials.get(config, new Date(t0 + 30_000), false), { name: 'PluginError', message: /exited with status 1/ })
  await t.rejects(credentials.get(config, new Date(t0 + 31_000), false), { name: 'PluginError' }, 'a second reload soon after')
  t.equal((await runs()).length, 3, 'gets the same failure without a run')
  await t.rejects(credentials.get(config, new Date(t0 + 36_000), false), { name: 'PluginError' })
  t.equal((await runs()).length, 4, 'and 5 s on, the plugin is tried again')
})

t.test('a plugin that leaves a process behind holding its output does not hold up the load', async (t) => {
  const folder = join(dir, 'lingering-plugin')
  await mkdir(folder, { recursive: true })
  const script = join(folder, 'plugin.mjs')
  const CHILD_HOLDS_MS = 30_000
  await writeFile(script, `
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, ${CHILD_HOLDS_MS})'], { stdio: 'inherit' })
writeFileSync(process.env.PID_FILE, String(child.pid))
child.unref()
process.stdout.write(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: 'lingering' } }))
`)
  const pidFile = join(folder, 'pid')
  t.teardown(async () => { try { process.kill(Number(await readFile(pidFile, 'utf8')), 'SIGKILL') } catch { /* gone */ } })
  const kubeconfig = await write('exec-lingering.yaml', kubeDoc('https://127.0.0.1:9', {
    ex: { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args: [script], env: [{ name: 'PID_FILE', value: pidFile }] } },
  }))
  const started = Date.now()
  const bundle = await load(['--kubeconfig', kubeconfig])
  t.equal(bundle.bearerToken, 'lingering')
  t.ok(Date.now() - started < CHILD_HOLDS_MS / 2, `loaded in ${Date.now() - started} ms, though its child holds stdout for 30 s`)
})

t.test('secrets stay out of messages: a proxy password, a server URL with one', async (t) => {
  const noEnv = { httpsProxy: undefined, noProxy: undefined }
  const target = new URL('https://k8s.example.org')
  t.throws(() => proxyFor(target, 'http://jane:50%off@proxy:3128', noEnv), { message: /^kubeconfig proxy-url: the user name or password is not valid percent-encoding \(write % as %25\)$/ })
  const bad = (() => { try { proxyFor(target, 'http://jane:s3cret@proxy:99999', noEnv) } catch (err) { return (err as Error).message } return '' })()
  t.match(bad, /is not a URL/)
  t.notMatch(bad, /s3cret/, 'an unparsable proxy URL is shown without its password')
  // Go's bare form, and passwords holding what ends an authority, each with a typo that keeps it from parsing.
  const typos = ['jane:s3cret@proxy:31x28', 'jane:s3/cret@proxy:3128', 'jane:s3?cret@proxy:99999', 'jane:s3#cret@proxy:99999',
    'http://jane:s3/cret@proxy:99999', 'http://jane:s3@cret@proxy:99999', 'http://jane:s3?cret@[proxy:3128']
  for (const typo of typos) {
    for (const [where, attempt] of [['proxy-url', () => proxyFor(target, typo, noEnv)],
      ['HTTPS_PROXY', () => proxyFor(target, undefined, { httpsProxy: typo, noProxy: undefined })]] as const) {
      const message = (() => { try { attempt() } catch (err) { return (err as Error).message } return 'parsed' })()
      t.notMatch(message, /s3|cret|jane/, `${where} '${typo}': ${message}`)
    }
  }
  const kubeconfig = await write('http-server.yaml', kubeDoc('http://admin:s3cret@10.0.0.1:6443', { u: { token: 'x' } }))
  const err = await load(['--kubeconfig', kubeconfig]).then(() => '', (e: Error) => e.message)
  t.match(err, /must be an https:\/\/ URL/)
  t.notMatch(err, /s3cret/)
})

t.test('the lines about the credential say the one in use: a certificate\'s context and kubeconfig, a token\'s own words', async (t) => {
  const api = await startApiServer(t)
  await writeFile(join(dir, 'words.token'), 'a-token-for-the-words-test\n')
  const kubeconfig = await write('words.yaml', kubeDoc(api.url, {
    cert: { 'client-certificate': files.cert, 'client-key': files.key },
    tok: { tokenFile: join(dir, 'words.token') },
  }))
  const said = async (context: string) => {
    const proxy = await startCli(t, ['--kubeconfig', kubeconfig, '--context', context])
    proxy.child.kill('SIGHUP')
    await until(() => proxy.logs().some((l) => / unchanged: still serving as /.test(String(l.msg))), 5_000)
    proxy.child.kill('SIGTERM')
    await proxy.exited
    return proxy.logs().map((l) => String(l.msg))
  }

  const certificate = await said('cert')
  t.ok(certificate.some((m) => m.endsWith(`as CN=demo-admin, O=system:masters (the client certificate of user 'cert' of context 'cert' (kubeconfig ${kubeconfig}); reloaded when its files change)`)),
    'the start line names the context and the kubeconfig of a client certificate')
  t.ok(certificate.includes('upstream reachable over mutual TLS: ready'))
  t.ok(certificate.includes('SIGHUP: reloading certificates'))
  t.ok(certificate.some((m) => m.startsWith('certificate files unchanged: still serving as CN=demo-admin')))

  const token = await said('tok')
  t.ok(token.some((m) => m.endsWith(`as tokenFile of user 'tok' of context 'tok' (kubeconfig ${kubeconfig}) ${join(dir, 'words.token')} (a bearer token; followed when its file changes)`)),
    'the start line says it is a bearer token, followed when its file changes')
  t.ok(token.includes('upstream reachable over TLS with the bearer token: ready'))
  t.ok(token.includes('SIGHUP: reloading the token'))
  t.ok(token.some((m) => m.startsWith('token unchanged: still serving as tokenFile of user \'tok\'')))
  t.notOk(token.some((m) => /mutual TLS|certificate files|reloading certificates|certificate reload/.test(m)), 'no line speaks of a client certificate it does not have')
  t.notMatch(token.join('\n'), /a-token-for-the-words-test/, 'nor of the token itself')
})
