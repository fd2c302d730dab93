// A request, and anything its answer redirects to, stays in the cluster it names: a hostile API
// server of one cluster answers with a Location into another, and no client may follow it there.
// Real kubectl against two API servers with their own CAs and identities, and raw sockets for the
// tunnel door.
import { execFile } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { stringify } from 'yaml'
import { splitClusterPrefix } from '../../src/admission/target.js'
import { dotsRemoved, Redirects, type RedirectScope } from '../../src/forwarding/redirects.js'
import { get, rawRequest, statusLine } from '../helpers/http.js'
import { findKubectl, NO_KUBECTL } from '../helpers/kubectl.js'
import { twoClusters, twoContexts } from '../helpers/clusters.js'
import type { Teardown } from '../helpers/pki.js'
import { startProxyWith } from '../helpers/proxy.js'
import { startDemoUpstream, startUpstream, whoAmIHandler } from '../helpers/upstream.js'
import { startTunnelUpstream } from '../helpers/tunnel-upstream.js'
import { until } from '../helpers/until.js'
import { tempDir } from '../helpers/temp.js'

const run = promisify(execFile)
const kubectl = findKubectl()

t.test('a Location is kept in its cluster however a client resolves it, or refused', async (t) => {
  const served = new Set(['main', 'dev', 'prod'])
  // As the proxy routes: a served name after /clusters/, else the default cluster 'main' (or nowhere, for a
  // target that only normalises to a prefix).
  const landing = (target: string) => {
    const split = splitClusterPrefix(target, (n) => served.has(n), 10)
    if (split) return split.served ? split.name : undefined
    return /^\/+\.?\/*clusters(?:[/?]|$)/.test(target) ? undefined : 'main'
  }
  const redirects = new Redirects({ scheme: 'http', port: () => 8001, acceptHosts: [/^localhost$/, /^127\.0\.0\.1$/, /^\[::1\]$/] })
  const fromDev: RedirectScope = { host: '127.0.0.1:8001', target: '/clusters/dev/api/v1/namespaces/default/pods/pod-a', prefix: '/clusters/dev', cluster: 'dev', landing }
  const fromMain: RedirectScope = { host: 'localhost:8001', target: '/api/v1/namespaces/default/pods/pod-a', prefix: '', cluster: 'main', landing }
  const judge = (scope: RedirectScope, value: string, name = 'location') => {
    const headers = ['content-type', 'application/json', name, value]
    const refused = redirects.confine(headers, () => scope)
    return refused === undefined ? { sent: headers[3] } : { refused }
  }
  const kept: Array<[RedirectScope, string, string]> = [
    [fromDev, '/api/v1/namespaces/default/pods/pod-b', '/clusters/dev/api/v1/namespaces/default/pods/pod-b'],
    [fromDev, '/api/v1/namespaces/default/services/web/proxy/', '/clusters/dev/api/v1/namespaces/default/services/web/proxy/'],
    [fromDev, 'pod-b', 'pod-b'],
    [fromDev, '../pods/pod-b?watch=1', '../pods/pod-b?watch=1'],
    [fromDev, '../../../../../clusters/prod/api', '../../../../../clusters/prod/api'],
    [fromDev, '?dryRun=All', '?dryRun=All'],
    [fromDev, 'http://127.0.0.1:8001/clusters/dev/api', 'http://127.0.0.1:8001/clusters/dev/api'],
    [fromDev, 'mailto:admin@example.com', 'mailto:admin@example.com'],
    [fromMain, '/api/v1/namespaces/default/pods/pod-b', '/api/v1/namespaces/default/pods/pod-b'],
    [fromMain, '/clusters/main/api', '/clusters/main/api'],
  ]
  for (const [scope, value, sent] of kept) t.same(judge(scope, value), { sent }, `${scope.cluster}: ${value} → ${sent}`)
  const refused: Array<[RedirectScope, string, RegExp]> = [
    // The finding: a DELETE's 307 from dev's API server into prod.
    [fromDev, '/../../clusters/prod/api/v1/namespaces/default/pods/pod-a', /leads out of cluster 'dev', to cluster 'prod'/],
    [fromDev, '/%2e%2e/%2E%2E/clusters/prod/api', /to cluster 'prod'/],
    [fromDev, '../../../../../../../clusters/prod/api', /to cluster 'prod'/],
    [fromDev, '../../../../../../../../api/v1/pods', /to cluster 'main'/],
    [fromDev, '/..', /leads out of cluster 'dev', to nowhere the proxy serves/],
    // What the API server would resolve at its own root is not resolved for it: a path that climbs is refused.
    [fromDev, '/../api', /leads out of cluster 'dev'/],
    [fromDev, 'http:/clusters/prod/api', /to cluster 'prod'/],
    [fromDev, 'http://127.0.0.1:8001/clusters/prod/api', /to cluster 'prod'/],
    [fromDev, 'http://localhost:8001/api/v1/pods', /to cluster 'main'/],
    [fromDev, '//127.0.0.1:8001/clusters/prod/api', /to cluster 'prod'/],
    [fromDev, 'HTTP://LOCALHOST:8001/clusters/prod/api', /to cluster 'prod'/],
    [fromDev, 'http://evil@127.0.0.1:8001/clusters/prod/api', /to cluster 'prod'/],
    [fromDev, 'http://2130706433:8001/clusters/prod/api', /to cluster 'prod'/],
    [fromDev, 'http://127.0.0.1:8001/clusters/dev/../prod/api', /to cluster 'prod'/],
    [fromDev, 'http://127.0.0.1:8002/api', /to 127\.0\.0\.1:8002, away from mtls-proxy/],
    [fromDev, 'http://[::1]:9999/', /away from mtls-proxy/],
    // Other names of this very listener.
    [fromDev, 'http://[::ffff:127.0.0.1]:8001/clusters/prod/', /to cluster 'prod'/],
    [fromDev, 'http://0.0.0.0:8001/clusters/prod/', /to cluster 'prod'/],
    [fromDev, 'http://kubernetes.localhost:8001/', /to cluster 'main'/],
    [fromDev, 'http://kubernetes.localhost:8443/', /away from mtls-proxy/],
    [fromDev, 'http://[::ffff:7f00:2]:6443/', /away from mtls-proxy/],
    [fromDev, 'https://127.0.0.1:8001/clusters/dev/api', /away from mtls-proxy/],
    [fromDev, 'http:\\\\127.0.0.1:8002/api', /away from mtls-proxy/],
    [fromDev, '/\\127.0.0.1:8002/api', /backslash/],
    [fromDev, '\\\\evil.example\\api', /backslash/],
    [fromDev, '/api\tx', /control characters/],
    // Off this machine: client-go would carry the caller's token there (it adds it to every hop).
    [fromDev, 'https://collector.example/steal', /to collector\.example, away from mtls-proxy \(a client would take the request, and its token, there\)/],
    [fromDev, 'http://vm:8001/clusters/dev/api', /to vm:8001, away from mtls-proxy/],
    // An empty authority: a host to browsers, a path on this host to Go (`///`) and Python (`http:///`).
    [fromDev, '///api/v1/namespaces/default/pods/victim', /away from mtls-proxy/],
    [fromDev, 'http:///api/v1/namespaces/default/pods/victim', /away from mtls-proxy/],
    [fromDev, 'http:///127.0.0.1:8001/clusters/dev/api', /to cluster 'main' \(\/127\.0\.0\.1:8001\/clusters\/dev\/api\)/],
    [fromDev, 'http://[bad', /cannot be resolved/],
    [fromMain, '/clusters/prod/api/v1/namespaces/default/pods/pod-a', /leads out of cluster 'main', to cluster 'prod'/],
    [fromMain, '/./clusters/prod/api', /to cluster 'prod'/],
  ]
  for (const [scope, value, why] of refused) t.match(judge(scope, value), { refused: why }, `${scope.cluster}: ${value} refused`)
  t.match(judge(fromDev, '/../../clusters/prod/x', 'Content-Location'), { refused: /^its Content-Location/ }, 'Content-Location alike, in any case')

  const dots: Array<[string, string]> = [['/a/b/../c', '/a/c'], ['/a/./b/', '/a/b/'], ['/a/..', '/'], ['/../../x?y=/../', '/x?y=/../'], ['/a/%2e%2e/b', '/a/%2e%2e/b']]
  for (const [path, expected] of dots) t.equal(dotsRemoved(path), expected, `RFC 3986 dot removal of ${path}, literal dots only`)
})

const { dir, devPki, prodPki } = await twoClusters(t, 'redirects')

async function kubeconfig (name: string, servers: { dev: string; prod: string }): Promise<string> {
  const file = join(dir, name)
  await writeFile(file, stringify(twoContexts(servers)), { mode: 0o600 })
  return file
}

/** kubectl with a home of its own (removed with the test) and no kubeconfig: --server says where; resolves whatever its exit code. */
type Kubectl = (server: string, ...args: string[]) => Promise<{ code: number; stdout: string; stderr: string }>

async function kubectlAt (tt: Teardown): Promise<Kubectl> {
  const home = await tempDir(tt, 'kubectl')
  const env = { PATH: process.env.PATH, HOME: home, KUBECONFIG: join(home, 'none') }
  return (server, ...args) =>
    run(kubectl!, ['--server', server, '--cache-dir', join(home, 'cache'), ...args], { env, timeout: 30_000 }).then(
      (r) => ({ code: 0, ...r }), (e: { code: number; stdout: string; stderr: string }) => e)
}

const DISCOVERY: Record<string, unknown> = {
  '/api': { kind: 'APIVersions', versions: ['v1'] },
  '/apis': { kind: 'APIGroupList', apiVersion: 'v1', groups: [] },
  '/api/v1': {
    kind: 'APIResourceList',
    groupVersion: 'v1',
    resources: [{ name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs: ['create', 'delete', 'get', 'list'] }],
  },
}

/**
 * dev's API server, turned hostile: it answers discovery, and every write with a 307 to wherever
 * `location` says (Go clients follow 307 with the method and the body).
 */
function hostile (location: (req: IncomingMessage) => string) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '').split('?')[0]!
    if (req.method === 'GET' && DISCOVERY[path]) {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify(DISCOVERY[path]))
      return
    }
    req.resume()
    res.writeHead(307, { location: location(req), 'content-type': 'application/json' })
    res.end('{}')
  }
}

t.test('kubectl delete and create -f: a hostile cluster\'s 307 into another cluster is refused, with a 502 Status and an error line', { skip: kubectl ? false : NO_KUBECTL }, async (t) => {
  const prod = await startDemoUpstream(t, prodPki)
  let port = 0
  const escapes = [
    (req: IncomingMessage) => `/../..${req.url!.replace(/^\/api/, '/clusters/prod/api')}`,
    (req: IncomingMessage) => `http://127.0.0.1:${port}/clusters/prod${req.url!}`,
  ]
  let escape = escapes[0]!
  const dev = await startUpstream(t, devPki, hostile((req) => escape(req)))
  const file = await kubeconfig('hostile.yaml', { dev: dev.url, prod: prod.url })
  const proxy = await startProxyWith(t, ['--kubeconfig', file, '--all-contexts', '--port', '0'])
  port = proxy.port
  const k = await kubectlAt(t)
  const prodPods = async () => (await k(`${proxy.url}/clusters/prod`, 'get', 'pods', '-o', 'name')).stdout
  const manifest = join(dir, 'pod.yaml')
  await writeFile(manifest, stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'smuggled' }, spec: { containers: [{ name: 'c', image: 'nginx' }] } }))

  for (const [i, how] of ['a path that climbs out of the prefix', 'the proxy\'s own origin'].entries()) {
    escape = escapes[i]!
    for (const server of [`${proxy.url}/clusters/dev`, proxy.url]) {
      const deleted = await k(server, 'delete', 'pod', 'web-7d4b9c6f5-abcde', '--wait=false')
      t.not(deleted.code, 0, `${how}, via ${server}: kubectl delete fails`)
      t.match(deleted.stderr, /BadGateway|answered 307, and its Location .* leads out of cluster 'dev'/, 'with the proxy\'s reason')
      const created = await k(server, 'create', '-f', manifest)
      t.not(created.code, 0, `${how}, via ${server}: kubectl create -f fails`)
    }
  }
  t.match(await prodPods(), /pod\/web-7d4b9c6f5-abcde/, 'prod\'s pod was not deleted')
  t.notMatch(await prodPods(), /smuggled/, 'and nothing was created in prod')
  t.ok(proxy.logs.some((l) => l.level === 50 && l.cluster === 'dev' && l.status === 307 && /leads out of cluster 'dev', to cluster 'prod'/.test(String(l.msg))),
    'an error line names the cluster and why')
  const metrics = (await get(`${proxy.url}/-/metrics`)).body
  t.match(metrics, /^mtls_proxy_upstream_errors_total\{cause="redirect",cluster="dev"\} 8$/m)
})

t.test('from a named cluster into the default one by an empty authority (///api: a path to Go, a host to browsers)', { skip: kubectl ? false : NO_KUBECTL }, async (t) => {
  const dev = await startDemoUpstream(t, devPki)
  const prod = await startUpstream(t, prodPki, hostile((req) => `//${req.url!}`))
  const proxy = await startProxyWith(t, ['--kubeconfig', await kubeconfig('empty-authority.yaml', { dev: dev.url, prod: prod.url }), '--all-contexts',
    '--port', '0'])
  const k = await kubectlAt(t)
  const deleted = await k(`${proxy.url}/clusters/prod`, 'delete', 'pod', 'web-7d4b9c6f5-abcde', '--wait=false')
  t.not(deleted.code, 0, 'kubectl delete through prod fails')
  t.match(deleted.stderr, /Location '\/\/\/api\/v1\/namespaces\/default\/pods\/web-7d4b9c6f5-abcde' leads out of cluster 'prod'/)
  t.match((await k(proxy.url, 'get', 'pods', '-o', 'name')).stdout, /pod\/web-7d4b9c6f5-abcde/, 'the default cluster\'s pod is still there')
})

t.test('a redirect off this machine is refused: kubectl would carry the caller\'s token there', { skip: kubectl ? false : NO_KUBECTL }, async (t) => {
  // Where the redirect points: a name kubectl reaches through its HTTP_PROXY, which notes what it was sent.
  const sent: string[] = []
  const { createServer } = await import('node:http')
  const collector = createServer((req, res) => {
    sent.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''}`)
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end('{"kind":"Status","status":"Success"}')
  })
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { collector.closeAllConnections(); collector.close() })
  const dev = await startUpstream(t, devPki, hostile(() => 'http://collector.example/steal'))
  const prod = await startDemoUpstream(t, prodPki)
  const file = await kubeconfig('collector.yaml', { dev: dev.url, prod: prod.url })
  // Run mode: HTTPS and a token made for the command, which kubectl sends on every request.
  const { runCli } = await import('../helpers/cli.js')
  const inside = await runCli(['--kubeconfig', file, '--', kubectl!, 'delete', 'pod', 'web', '--wait=false'],
    { HOME: dir, HTTP_PROXY: `http://127.0.0.1:${(collector.address() as import('node:net').AddressInfo).port}` }, 30_000)
  t.not(inside.code, 0, 'kubectl delete fails')
  t.match(inside.stderr, /leads out of cluster 'dev', to collector\.example, away from mtls-proxy/)
  t.same(sent, [], 'the collector was sent nothing, and no token')
})

t.test('the tunnel door: an upgrade answered with a Location out of its cluster is refused, 101 or not', async (t) => {
  const prod = await startUpstream(t, prodPki, whoAmIHandler)
  const { upstream: dev } = await startTunnelUpstream(t, devPki, whoAmIHandler)
  // dev's API server answers upgrades on …/redirect with a 307, and on …/switch with a 101 carrying a Location.
  dev.server.prependListener('upgrade', (req: IncomingMessage, socket: import('node:stream').Duplex) => {
    if (req.url?.includes('redirect')) {
      socket.end('HTTP/1.1 307 Temporary Redirect\r\nLocation: /../../clusters/prod/api/v1/namespaces/default/pods/web/exec\r\nContent-Length: 0\r\n\r\n')
    } else if (req.url?.includes('switch')) {
      socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nLocation: http://127.0.0.1:1/\r\n\r\n')
    }
  })
  const file = await kubeconfig('tunnels.yaml', { dev: dev.url, prod: prod.url })
  const proxy = await startProxyWith(t, ['--kubeconfig', file, '--all-contexts', '--port', '0'])
  const upgrade = (path: string) => rawRequest(proxy.port, [`GET ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: Upgrade', 'Upgrade: websocket',
    'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', '', ''].join('\r\n'))
  for (const path of ['/clusters/dev/api/v1/namespaces/default/pods/web/exec?redirect=1', '/clusters/dev/api/v1/namespaces/default/pods/web/exec?switch=1']) {
    const answer = await upgrade(path)
    t.equal(statusLine(answer), 502, path)
    t.match(answer, /leads (out of cluster 'dev'|out of cluster 'dev', to another server on this machine)/)
  }
  await until(() => proxy.logs.filter((l) => l.msg === 'request' && l.status === 502 && l.upgrade === 'websocket').length === 2)
  t.equal(prod.calls().length, 0, 'prod\'s API server was never asked')
})
