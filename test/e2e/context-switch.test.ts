// A credential goes only to the server it was issued for: `kubectl config use-context` while the proxy
// serves must not send the new context's token to the old context's server, by a request, by the
// readiness probe, under --all-contexts or by a worker started later. The default cluster keeps the
// context it started with, as kubectl proxy does; a reload that would change a cluster's server is
// refused whole.
import { execFile } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import { parse, stringify } from 'yaml'
import { get } from '../helpers/http.js'
import { findKubectl } from '../helpers/kubectl.js'
import { createDemoPki } from '../helpers/pki.js'
import { startProxyWith } from '../helpers/proxy.js'
import { until } from '../helpers/until.js'
import { fresh, pidsOf, startWorkers, workersSeen } from '../helpers/workers.js'
import { tempDir } from '../helpers/temp.js'

const run = promisify(execFile)
const kubectl = findKubectl()
const pki = await createDemoPki()
const dir = await tempDir(t, 'context')
const b64 = (text: string) => Buffer.from(text).toString('base64')

interface ApiServer { name: string; url: string; tokens: () => string[] }

/** An API server that takes a token alone, answers with its own name, and notes every token it was sent. */
async function apiServer (tt: { teardown: (fn: () => unknown) => void }, name: string): Promise<ApiServer> {
  const seen: string[] = []
  const server: HttpsServer = createHttpsServer({ cert: pki.server.certPem, key: pki.server.keyPem },
    (req: IncomingMessage, res: ServerResponse) => {
      seen.push(req.headers.authorization ?? '')
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ server: name, authorization: req.headers.authorization }))
    })
  const sockets = new Set<Socket>()
  server.on('connection', (s: Socket) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  tt.teardown(() => { for (const s of sockets) s.destroy(); server.close() })
  return { name, url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, tokens: () => [...seen] }
}

/** A kubeconfig with one context per server, each user with its own token. */
async function kubeconfig (file: string, servers: ApiServer[], current: string): Promise<string> {
  await writeFile(file, stringify({
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': current,
    clusters: servers.map((s) => ({ name: s.name, cluster: { server: s.url, 'certificate-authority-data': b64(pki.ca.certPem) } })),
    users: servers.map((s) => ({ name: s.name, user: { token: `token-of-${s.name}` } })),
    contexts: servers.map((s) => ({ name: s.name, context: { cluster: s.name, user: s.name } })),
  }), { mode: 0o600 })
  return file
}

/** `kubectl config use-context`, as the user types it (the same edit by hand where no kubectl is installed). */
async function useContext (file: string, context: string): Promise<void> {
  if (kubectl) {
    await run(kubectl, ['config', 'use-context', context, '--kubeconfig', file], { env: { PATH: process.env.PATH, HOME: dir } })
    return
  }
  const doc = parse(await readFile(file, 'utf8')) as Record<string, unknown>
  await writeFile(file, stringify({ ...doc, 'current-context': context }), { mode: 0o600 })
}

const onlyOwnToken = (t: Test, server: ApiServer) =>
  t.same([...new Set(server.tokens())], server.tokens().length > 0 ? [`Bearer token-of-${server.name}`] : [],
    `${server.name}'s server was only ever sent ${server.name}'s token`)

t.test('one cluster: the proxy keeps the context it started with, and the new context\'s token never reaches the old server', async (t) => {
  const a = await apiServer(t, 'team-a')
  const c = await apiServer(t, 'team-c')
  const file = await kubeconfig(join(dir, 'one.yaml'), [a, c], 'team-c')
  const proxy = await startProxyWith(t, ['--kubeconfig', file, '--port', '0', '--probe-interval', '0.2'])
  t.match((await get(`${proxy.url}/api`)).json(), { server: 'team-c', authorization: 'Bearer token-of-team-c' })

  await useContext(file, 'team-a')
  await until(() => proxy.logs.some((l) => /current-context is now 'team-a'; mtls-proxy keeps serving context 'team-c'/.test(String(l.msg))), 5_000)
  // Probes go on every 0.2 s: give them time to carry a wrong token if they would.
  const probes = c.tokens().length
  await until(() => c.tokens().length >= probes + 5, 5_000)
  t.match((await get(`${proxy.url}/api`)).json(), { server: 'team-c', authorization: 'Bearer token-of-team-c' }, 'requests too')
  onlyOwnToken(t, c)
  t.same(a.tokens(), [], 'the new context\'s server is asked nothing')

  // The context's own server changed: that reload is refused whole, and said.
  const doc = parse(await readFile(file, 'utf8')) as { clusters: Array<{ name: string; cluster: { server: string } }> }
  doc.clusters.find((x) => x.name === 'team-c')!.cluster.server = a.url
  await writeFile(file, stringify(doc), { mode: 0o600 })
  await until(async () => ((await get(`${proxy.url}/-/status`)).json().lastReload as { outcome?: string } | null)?.outcome === 'failed', 5_000)
  t.match((await get(`${proxy.url}/-/status`)).json(), {
    upstream: c.url,
    lastReload: { outcome: 'failed', error: new RegExp(`now name server ${a.url} .*bound to ${c.url} .*a restart follows the new server`) },
  }, '/-/status says why')
  t.ok(proxy.logs.some((l) => l.level === 50 && /token reload failed.*a restart follows the new server/.test(String(l.msg))), 'one error line')
  t.match((await get(`${proxy.url}/-/metrics`)).body, /^mtls_proxy_certificate_reloads_total\{outcome="failed",cluster="team-c"\} [1-9]/m)
  t.match((await get(`${proxy.url}/api`)).json(), { server: 'team-c', authorization: 'Bearer token-of-team-c' }, 'the first server, with its own token')
  onlyOwnToken(t, c)
  t.same(a.tokens(), [], 'and nothing to the server the kubeconfig names now')
})

t.test('--all-contexts: each cluster keeps its own server and token after use-context, the default\'s prefix included', async (t) => {
  const alpha = await apiServer(t, 'alpha')
  const gamma = await apiServer(t, 'gamma')
  const file = await kubeconfig(join(dir, 'all.yaml'), [alpha, gamma], 'alpha')
  const proxy = await startProxyWith(t, ['--kubeconfig', file, '--all-contexts', '--port', '0', '--probe-interval', '0.2'])
  await useContext(file, 'gamma')
  await until(() => proxy.logs.some((l) => /current-context is now 'gamma'/.test(String(l.msg))), 5_000)
  const probes = alpha.tokens().length
  await until(() => alpha.tokens().length >= probes + 5, 5_000)
  for (const path of ['/api', '/clusters/alpha/api']) {
    t.match((await get(`${proxy.url}${path}`)).json(), { server: 'alpha', authorization: 'Bearer token-of-alpha' }, `${path}: alpha, as alpha`)
  }
  t.match((await get(`${proxy.url}/clusters/gamma/api`)).json(), { server: 'gamma', authorization: 'Bearer token-of-gamma' })
  onlyOwnToken(t, alpha)
  onlyOwnToken(t, gamma)
})

t.test('--workers 2: a worker started after use-context serves the same server, with its token', async (t) => {
  const a = await apiServer(t, 'team-a')
  const c = await apiServer(t, 'team-c')
  const file = await kubeconfig(join(dir, 'workers.yaml'), [a, c], 'team-c')
  const proxy = await startWorkers(t, ['--kubeconfig', file, '--workers', '2', '--probe-interval', '0.5'])
  await useContext(file, 'team-a')
  process.kill(pidsOf(proxy)[1]!, 'SIGKILL')
  // Worker 3 takes the dead one's place, reading the kubeconfig as it is now.
  await until(async () => {
    await fresh(`${proxy.url}/-/healthz`)
    return workersSeen(proxy).has(3)
  }, 15_000)
  const answers = await Promise.all(Array.from({ length: 8 }, () => fresh(`${proxy.url}/api`)))
  for (const answer of answers) t.match(JSON.parse(answer.body), { server: 'team-c', authorization: 'Bearer token-of-team-c' })
  const answered = () => [...new Set(proxy.logs().filter((l) => l.msg === 'request' && l.url === '/api').map((l) => l.worker))].sort()
  await until(() => answered().length === 2)
  t.same(answered(), [1, 3], 'both serving workers answered, the new one too')
  onlyOwnToken(t, c)
  t.same(a.tokens(), [], 'the context switched to is asked nothing')
})
