// Every credential a kubeconfig holds, as kubectl takes it: $KUBECONFIG merged, the default
// ~/.kube/config, --context/--cluster/--user; bearer tokens and token files; exec plugins that hand
// out certificates or tokens, renewed before they expire without dropping an open watch; and
// proxy-url through a CONNECT proxy. Real sockets and TLS throughout; the plugins are small scripts.
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer as createNetServer, connect as netConnect, type AddressInfo, type Socket } from 'node:net'
import { chmod, readFile, writeFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import t from 'tap'
import { stringify } from 'yaml'
import { request as undiciRequest } from 'undici'
import { pkiWithFiles } from './helpers/pki.js'
import { startProxy } from './helpers/proxy.js'
import { get } from './helpers/http.js'
import { runCli } from './helpers/cli.js'
import { until } from './helpers/until.js'
import { loadConfig, type Config } from '../src/config.js'
import type { CredentialBundle } from '../src/credentials/bundle.js'
import { fileSetSource } from '../src/credentials/source.js'
import { exempt, proxyFor } from '../src/credentials/proxy-url.js'
import { renewalTime } from '../src/credentials/exec.js'

const { pki, files } = await pkiWithFiles(t)
const dir = files.dir
const b64 = (s: string) => Buffer.from(s).toString('base64')

function config (argv: string[], env: NodeJS.ProcessEnv = {}): Config {
  const c = loadConfig(argv, env, dir)
  if (c.action !== 'run') throw new Error('run expected')
  return c.config
}

function load (argv: string[], env: NodeJS.ProcessEnv = {}): Promise<CredentialBundle> {
  return fileSetSource(config(argv, env).credentials).load(new Date())
}

async function write (name: string, doc: unknown): Promise<string> {
  const file = join(dir, name)
  await writeFile(file, typeof doc === 'string' ? doc : stringify(doc), { mode: 0o600 })
  return file
}

interface Seen { cn: string | undefined; authorization: string | undefined; url: string }

/**
 * An API server over TLS that asks for a client certificate but does not insist (a token alone
 * may do), and tells who called: the certificate's CN and the Authorization header. `/watch`
 * streams a line every 100 ms until the client goes; `accept` decides 401s.
 */
async function startApiServer (tt: typeof t, accept: (seen: Seen) => boolean = () => true) {
  const seen: Seen[] = []
  const server: HttpsServer = createHttpsServer({
    ca: pki.ca.certPem, cert: pki.server.certPem, key: pki.server.keyPem, requestCert: true, rejectUnauthorized: false,
  }, (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket as TLSSocket
    const cert = socket.authorized ? socket.getPeerCertificate() : undefined
    const who: Seen = { cn: cert?.subject?.CN, authorization: req.headers.authorization, url: req.url ?? '' }
    if (req.url !== '/version') seen.push(who)
    if (req.url !== '/version' && !accept(who)) {
      res.writeHead(401, { 'content-type': 'application/json' })
      res.end('{"kind":"Status","code":401}')
      return
    }
    if (req.url === '/watch') {
      res.writeHead(200, { 'content-type': 'application/json' })
      const timer = setInterval(() => res.write(`${JSON.stringify(who)}\n`), 100)
      res.on('close', () => clearInterval(timer))
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
  return { url: `https://127.0.0.1:${port}`, port, seen }
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
function proxyWith (tt: typeof t, upstreamUrl: string, kubeconfig: string, extra: string[] = []) {
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
    users: [{ name: 'u1', user: { token: 'shadowed' } }, { name: 'u2', user: { tokenFile: 'u2.token' } }],
    contexts: [{ name: 'one', context: { cluster: 'k2', user: 'u2' } }, { name: 'two', context: { cluster: 'k2', user: 'u2' } }],
  })
  const env = { KUBECONFIG: [join(dir, 'absent.yaml'), first, second].join(':') }
  const merged = await load([], env)
  t.equal(merged.server.url.origin, 'https://10.0.0.1:6443', 'the first file to set current-context, and cluster k1, wins')
  t.equal(merged.bearerToken, 'token-of-u1', 'user u1 from the first file, whole')
  t.ok(merged.sources.watch.includes(second), 'every file of the list is watched')
  const two = await load(['--context', 'two'], env)
  t.equal(two.server.url.origin, 'https://10.0.0.2:6443')
  t.equal(two.bearerToken, 'token-of-u2', 'tokenFile relative to the file that holds the user, trimmed')
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
  const took = await until(async () => (await get(`${proxy.url}/x`)).json().authorization === 'Bearer second-token', 10_000)
  t.ok(took < 10_000, `the rotated token in use after ${took} ms`)
  t.notMatch(proxy.logText(), /first-token|second-token/, 'no log line holds either token')
})
