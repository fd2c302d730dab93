// Several clusters behind one port: --all-contexts serves every context of a kubeconfig under
// /clusters/NAME/, and a config file's clusters: does the same for certificate files. Two API
// servers with different CAs and client identities, real TLS, kubectl through the prefix.
import { execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { stringify } from 'yaml'
import type { Handler } from '../../src/demo/api-server.js'
import { twoClusters, twoContexts } from '../helpers/clusters.js'
import { writeClientFiles } from '../../src/demo/pki.js'
import { get, rawRequest, statusLine } from '../helpers/http.js'
import { findKubectl, NO_KUBECTL } from '../helpers/kubectl.js'
import { startProxyWith } from '../helpers/proxy.js'
import { loadConfig } from '../../src/settings/load.js'
import { rulesNamingPrefix } from '../../src/admission/guard.js'
import { runCli, startCli } from '../helpers/cli.js'
import { startDemoUpstream, startUpstream, whoAmIHandler } from '../helpers/upstream.js'
import { startTunnelUpstream } from '../helpers/tunnel-upstream.js'
import { until } from '../helpers/until.js'
import { tempDir } from '../helpers/temp.js'

const run = promisify(execFile)
const kubectl = findKubectl()

// Two clusters that share nothing: each CA signs only its own server and client.
const { dir, devPki, prodPki, devFiles, prodFiles } = await twoClusters(t, 'clusters')

/** Tells who called: the client certificate's CN, and the path the API server was asked for. */
const whoAmI: Handler = (req, res) => {
  // As kube-apiserver sends a service proxy's root on to its trailing slash.
  if (req.url?.endsWith('/proxy')) {
    res.writeHead(301, { location: `${req.url}/` })
    res.end()
    return
  }
  whoAmIHandler(req, res)
}

// An exec plugin that hands out prod's certificate, and notes each time it runs.
const runs = join(dir, 'plugin-runs')
await writeFile(join(dir, 'credential.json'), JSON.stringify({
  apiVersion: 'client.authentication.k8s.io/v1',
  kind: 'ExecCredential',
  status: { clientCertificateData: prodPki.client.certPem, clientKeyData: prodPki.client.keyPem },
}))
await writeFile(join(dir, 'plugin.sh'), `#!/bin/sh\necho run >> '${runs}'\ncat '${join(dir, 'credential.json')}'\n`, { mode: 0o755 })

async function kubeconfig (name: string, servers: { dev: string; prod: string }): Promise<string> {
  const file = join(dir, name)
  const both = twoContexts(servers)
  await writeFile(file, stringify({
    ...both,
    clusters: [...both.clusters, { name: 'gone', cluster: { server: servers.prod, 'certificate-authority': 'nowhere/ca.crt' } }],
    users: [...both.users,
      { name: 'plugin', user: { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: './plugin.sh', interactiveMode: 'Never' } } }],
    contexts: [...both.contexts,
      // EKS names its contexts after ARNs, slashes included.
      { name: 'arn:aws:eks:eu-west-1:1:cluster/team', context: { cluster: 'prod', user: 'prod-admin' } },
      { name: 'broken', context: { cluster: 'gone', user: 'prod-admin' } },
      { name: 'lazy', context: { cluster: 'prod', user: 'plugin' } },
    ],
  }), { mode: 0o600 })
  return file
}

/** A config file: dev's files at the top level (the default cluster), prod's from `prodFolder` under clusters:. */
async function clustersConfig (name: string, servers: { dev: string; prod: string }, prodFolder: string): Promise<string> {
  const file = join(dir, name)
  await writeFile(file, stringify({
    upstream: servers.dev,
    cacert: 'dev/ca.crt',
    cert: 'dev/client.crt',
    key: 'dev/client.key',
    clusters: [{
      name: 'prod', upstream: servers.prod, cacert: `${prodFolder}/ca.crt`, cert: `${prodFolder}/client.crt`, key: `${prodFolder}/client.key`,
    }],
  }))
  return file
}

const json = (body: string) => JSON.parse(body) as Record<string, unknown>

t.test('--all-contexts: every context under /clusters/NAME/ with its own server, CA and identity; the default at / too', async (t) => {
  const dev = await startUpstream(t, devPki, whoAmI)
  const prod = await startUpstream(t, prodPki, whoAmI)
  const file = await kubeconfig('all.yaml', { dev: dev.url, prod: prod.url })
  const proxy = await startProxyWith(t, ['--kubeconfig', file, '--all-contexts', '--port', '0', '--probe-interval', '0.2',
    '--reject-paths', '^/api/v1/secrets'])
  const at = (path: string) => get(`${proxy.url}${path}`)

  t.same(json((await at('/clusters/dev/api/v1/pods?limit=1')).body), { cn: 'demo-admin', url: '/api/v1/pods?limit=1' }, 'dev, prefix removed')
  t.same(json((await at('/api/v1/pods')).body), { cn: 'demo-admin', url: '/api/v1/pods' }, 'the current context at / as well')
  t.same(json((await at('/clusters/prod/api/v1/pods')).body), { cn: 'prod-admin', url: '/api/v1/pods' }, 'prod, with its CA and identity')
  const arn = `/clusters/${encodeURIComponent('arn:aws:eks:eu-west-1:1:cluster/team')}/version`
  t.same(json((await at(arn)).body), { cn: 'prod-admin', url: '/version' }, 'a name with a slash, URI-encoded')
  t.same(json((await at('/clusters/prod')).body), { cn: 'prod-admin', url: '/' }, 'the prefix alone is the root')

  const service = '/api/v1/namespaces/default/services/web/proxy'
  const moved = await fetch(`${proxy.url}/clusters/prod${service}`, { redirect: 'manual' })
  t.equal(moved.headers.get('location'), `/clusters/prod${service}/`, 'a redirect to a path stays in its cluster')
  t.equal((await fetch(`${proxy.url}${service}`, { redirect: 'manual' })).headers.get('location'), `${service}/`, 'and without a prefix, as it was')
  t.same(json(await (await fetch(`${proxy.url}/clusters/prod${service}`)).text()), { cn: 'prod-admin', url: `${service}/` }, 'followed')

  const unknown = await at('/clusters/staging/api/v1/pods')
  t.equal(unknown.status, 404)
  t.match(json(unknown.body), { kind: 'Status', code: 404, message: /no cluster named 'staging'.*'dev', 'prod'/ }, 'an unknown name lists the known ones')
  t.equal((await at('/clusters/prod/api/v1/secrets')).status, 403, '--reject-paths is matched after the prefix')
  t.equal((await at('/api/v1/secrets')).status, 403, 'and without one')
  const sneakies = ['/clusters/prod/../dev/api', '/clusters/prod/%2e%2e/dev/api', '/clusters/prod/..%2fdev/api', '//clusters/prod/api',
    '/./clusters/prod/api', '/%63lusters/prod/api']
  for (const sneaky of sneakies) {
    const answer = await rawRequest(proxy.port, `GET ${sneaky} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`)
    t.equal(statusLine(answer), 400, `${sneaky}: no climbing out of a cluster into another`)
  }
  t.equal((await at('/clusters/prod/-/status')).status, 404, 'the proxy\'s own endpoints are not under a prefix')
  t.equal(prod.calls().length + dev.calls().length, 9, 'nothing refused reached an API server')

  await until(async () => (await at('/-/readyz?cluster=prod')).status === 200)
  t.equal((await at('/-/readyz')).status, 200, 'ready: the default cluster is')
  t.equal((await at('/-/readyz?cluster=nope')).status, 404)

  // A broken context serves 503 with its reason; the others serve.
  const broken = await at('/clusters/broken/api/v1/pods')
  t.equal(broken.status, 503)
  t.match(json(broken.body), { kind: 'Status', code: 503, message: /cluster 'broken' cannot be served: .*nowhere\/ca\.crt/ })
  t.match(json((await at('/-/readyz?cluster=broken')).body), { code: 503, message: /nowhere\/ca\.crt/ })
  t.ok(proxy.logs.some((l) => l.level === 50 && l.cluster === 'broken' && /cannot be served/.test(String(l.msg))), 'logged as an error at start')

  // An exec plugin of a context other than the default runs on first use, not at start.
  t.notOk(existsSync(runs), 'the plugin has not run')
  t.match(json((await at('/-/readyz?cluster=lazy')).body), { code: 503, message: /not used yet/ })
  t.same(json((await at('/clusters/lazy/api')).body), { cn: 'prod-admin', url: '/api' }, 'first use runs it')
  t.same(json((await at('/clusters/lazy/api')).body), { cn: 'prod-admin', url: '/api' })
  t.equal((await readFile(runs, 'utf8')).trim().split('\n').length, 1, 'once')

  const status = json((await at('/-/status')).body)
  const byName = Object.fromEntries((status.clusters as Array<Record<string, unknown>>).map((c) => [c.name, c]))
  t.same(Object.keys(byName).sort(), ['arn:aws:eks:eu-west-1:1:cluster/team', 'broken', 'dev', 'lazy', 'prod'])
  t.match(byName.dev, { default: true, state: 'ready', identity: /demo-admin/ })
  t.match(byName.prod, { default: false, identity: /prod-admin/, prefix: '/clusters/prod/' })
  t.match(byName.broken, { state: 'broken', reason: /nowhere/ })
  t.equal(status.upstream, dev.url, 'the top level is the default cluster, as with one')

  const metrics = (await at('/-/metrics')).body
  t.match(metrics, /^mtls_proxy_requests_total\{method="GET",code="200",cluster="prod"\} \d+$/m, 'requests by cluster')
  t.match(metrics, /^mtls_proxy_requests_total\{method="GET",code="503",cluster="broken"\} 1$/m)
  t.match(metrics, /^x509_cert_not_after\{role="client",subject="CN=prod-admin",[^}]*cluster="prod"\} \d+$/m, 'certificates by cluster')
  t.notMatch(metrics, /cluster="staging"/, 'a name nobody serves makes no series')
  t.ok(proxy.logs.some((l) => l.msg === 'request' && l.cluster === 'prod'), 'access lines name the cluster')

  // One cluster down: it answers 502; the other serves, and the proxy stays ready.
  await prod.close()
  t.equal((await at('/clusters/prod/api')).status, 502)
  t.same(json((await at('/clusters/dev/api')).body), { cn: 'demo-admin', url: '/api' })
  await until(async () => (await at('/-/readyz?cluster=prod')).status === 503)
  t.equal((await at('/-/readyz')).status, 200, 'the default cluster is still ready')
})

t.test('a config file\'s clusters: certificate files, each under /clusters/NAME/', async (t) => {
  const dev = await startUpstream(t, devPki, whoAmI)
  const prod = await startUpstream(t, prodPki, whoAmI)
  const file = await clustersConfig('clusters.yaml', { dev: dev.url, prod: prod.url }, 'prod')
  const proxy = await startProxyWith(t, ['--config', file, '--port', '0'])
  t.same(json((await get(`${proxy.url}/clusters/prod/api`)).body), { cn: 'prod-admin', url: '/api' })
  t.same(json((await get(`${proxy.url}/clusters/default/api`)).body), { cn: 'demo-admin', url: '/api' }, 'the top level is named default')
  t.same(json((await get(`${proxy.url}/api`)).body), { cn: 'demo-admin', url: '/api' })
})

t.test('each cluster reloads its own certificates: a rotated prod certificate, dev untouched', async (t) => {
  const dev = await startUpstream(t, devPki, whoAmI)
  const prod = await startUpstream(t, prodPki, whoAmI)
  const rot = join(dir, 'rotating')
  await mkdir(rot, { recursive: true })
  await writeClientFiles(prodPki, rot)
  const file = await clustersConfig('rotating.yaml', { dev: dev.url, prod: prod.url }, 'rotating')
  const proxy = await startProxyWith(t, ['--config', file, '--port', '0'])
  const cn = async (path: string) => json((await get(`${proxy.url}${path}`)).body).cn
  t.equal(await cn('/clusters/prod/api'), 'prod-admin')
  const renewed = await prodPki.ca.issue({ commonName: 'prod-admin-renewed', usage: 'client' })
  await writeFile(join(rot, 'client.key'), renewed.keyPem)
  await writeFile(join(rot, 'client.crt'), renewed.certPem)
  await until(async () => (await cn('/clusters/prod/api')) === 'prod-admin-renewed', 10_000)
  t.equal(await cn('/clusters/prod/api'), 'prod-admin-renewed', 'prod follows its rotated files')
  t.equal(await cn('/api'), 'demo-admin', 'dev is untouched')
  const metrics = (await get(`${proxy.url}/-/metrics`)).body
  t.match(metrics, /^mtls_proxy_certificate_reloads_total\{outcome="reloaded",cluster="prod"\} [1-9]/m)
  t.notMatch(metrics, /^mtls_proxy_certificate_reloads_total\{outcome="reloaded",cluster="default"\}/m)
  t.ok(proxy.logs.some((l) => l.cluster === 'prod' && /certificates reloaded/.test(String(l.msg))), 'the reload is logged for prod')
})

t.test('the CLI: SIGHUP reloads every cluster; -- COMMAND gets a kubeconfig with a context per cluster', async (t) => {
  const dev = await startDemoUpstream(t, devPki)
  const prod = await startDemoUpstream(t, prodPki)
  const file = await kubeconfig('cli.yaml', { dev: dev.url, prod: prod.url })
  const proxy = await startCli(t, ['--kubeconfig', file, '--all-contexts'])
  t.match(proxy.logs().find((l) => String(l.msg).startsWith('serving')), { cluster: 'dev', clusters: ['dev', 'prod', 'arn:aws:eks:eu-west-1:1:cluster/team', 'broken', 'lazy'] })
  proxy.child.kill('SIGHUP')
  const reloaded = (name: string) => proxy.logs().some((l) => l.trigger === 'SIGHUP' && (l.cluster ?? 'dev') === name)
  await until(() => reloaded('dev') && reloaded('prod'), 5_000)
  t.ok(reloaded('prod'), 'prod read its files again on SIGHUP')
  proxy.child.kill('SIGTERM')
  t.equal((await proxy.exited).code, 0)

  const shown = await runCli(['--kubeconfig', file, '--all-contexts', '--', 'sh', '-c', 'cat "$KUBECONFIG"'])
  const generated = JSON.parse(shown.stdout) as
    { contexts: Array<{ name: string }>; clusters: Array<{ name: string; cluster: { server: string } }> }
  t.same(generated.contexts.map((c) => c.name), ['mtls-proxy', 'dev', 'prod', 'arn:aws:eks:eu-west-1:1:cluster/team', 'broken', 'lazy'])
  t.match(generated.clusters.find((c) => c.name === 'arn:aws:eks:eu-west-1:1:cluster/team')!.cluster.server,
    /^https:\/\/127\.0\.0\.1:\d+\/clusters\/arn%3Aaws%3Aeks%3Aeu-west-1%3A1%3Acluster%2Fteam$/)
  if (!kubectl) return
  // -v=6 shows each URL kubectl asks for. (`kubectl get --raw PATH` takes PATH as absolute, past the server's own path.)
  const inside = await runCli(['--kubeconfig', file, '--all-contexts', '--', kubectl, '--context', 'prod', 'get', 'pods', '-v=6'],
    { HOME: dir }, 30_000)
  t.equal(inside.code, 0, inside.stderr)
  t.match(inside.stdout, /web-7d4b9c6f5-abcde/)
  t.match(inside.stderr, /GET https:\/\/127\.0\.0\.1:\d+\/clusters\/prod\/api\/v1\/namespaces\/default\/pods\?limit=500 200 OK/,
    'kubectl --context prod inside asks /clusters/prod/')
})

t.test('mistakes in the clusters are one line and exit 2', async (t) => {
  const dev = 'https://127.0.0.1:1'
  const file = await kubeconfig('mistakes.yaml', { dev, prod: dev })
  const both = await runCli(['--all-contexts', '--upstream', dev, '--cacert', devFiles.cacert, '--cert', devFiles.cert, '--key', devFiles.key])
  t.equal(both.code, 2)
  t.match(both.stderr, /--all-contexts serves every context of a kubeconfig/)
  const config = join(dir, 'bad-clusters.yaml')
  const attempt = async (clusters: unknown) => {
    await writeFile(config, stringify({ kubeconfig: file, clusters }))
    return runCli(['--config', config, '--port', '0'])
  }
  t.match(await attempt([{ upstream: dev }]), { code: 2, stderr: /clusters\[0\] .* needs a name/ })
  t.match(await attempt([{ name: '..', upstream: dev }]), { code: 2, stderr: /'\.\.' cannot be a cluster's name/ })
  t.match(await attempt([{ name: 'x' }]), { code: 2, stderr: /clusters\[0\] .*\('x'\) says nowhere to forward/ })
  t.match(await attempt([{ name: 'x', upstream: 'http://plain' }]), { code: 2, stderr: /clusters\[0\] .*\('x'\): .*must be an https:\/\/ URL/ })
  t.match(await attempt([{ name: 'x', upstream: dev, 'listen-cert': 'a' }]), { code: 2, stderr: /'listen-cert' cannot be set for one cluster/ })
  t.match(await attempt([{ name: 'x', upstream: dev, cacert: prodFiles.cacert }]), { code: 2, stderr: /missing --cert/ })
  const twice = { name: 'x', upstream: dev, cacert: prodFiles.cacert, cert: prodFiles.cert, key: prodFiles.key }
  t.match(await attempt([twice, twice]), { code: 2, stderr: /two clusters are named 'x'/ })
  t.match(await attempt([{ ...twice, name: 'dev' }]), { code: 2, stderr: /names 'dev', which is already the default cluster's name/ })
  for (const r of [both]) t.notMatch(r.stderr, /\n.+\n/, 'one line')

  // A context alone is one of the top-level kubeconfig's.
  await writeFile(config, stringify({ kubeconfig: file, clusters: [{ name: 'p', context: 'prod' }] }))
  const command = loadConfig(['--config', config], {})
  t.match(command.action === 'run' && command.config.clusters[0], { name: 'p', credentials: { kubeconfig: { files: [file], context: 'prod' } } })
})

t.test('a broken cluster serves once its files are fixed: asked again after 10 s, by a request or /-/readyz?cluster=', async (t) => {
  const dev = await startUpstream(t, devPki, whoAmI)
  const prod = await startUpstream(t, prodPki, whoAmI)
  const file = await kubeconfig('fixable.yaml', { dev: dev.url, prod: prod.url })
  await rm(join(dir, 'nowhere'), { recursive: true, force: true })
  const proxy = await startProxyWith(t, ['--kubeconfig', file, '--all-contexts', '--port', '0', '--probe-interval', '0.2'])
  t.equal((await get(`${proxy.url}/clusters/broken/api`)).status, 503)
  await mkdir(join(dir, 'nowhere'), { recursive: true })
  await writeFile(join(dir, 'nowhere', 'ca.crt'), prodPki.ca.certPem)
  t.teardown(() => rm(join(dir, 'nowhere'), { recursive: true, force: true }))
  t.equal((await get(`${proxy.url}/clusters/broken/api`)).status, 503, 'not tried again within 10 s')
  await until(async () => (await get(`${proxy.url}/-/readyz?cluster=broken`)).status === 200, 15_000)
  t.same(json((await get(`${proxy.url}/clusters/broken/api`)).body), { cn: 'prod-admin', url: '/api' }, 'fixed, it serves')
})

t.test('a stop answers 503 at once to a request waiting on an exec plugin still running', async (t) => {
  const dev = await startUpstream(t, devPki, whoAmI)
  const started = join(dir, 'slow-started')
  const PLUGIN_MS = 10_000
  await writeFile(join(dir, 'slow.sh'), `#!/bin/sh\ntouch '${started}'\nsleep ${PLUGIN_MS / 1000}\ncat '${join(dir, 'credential.json')}'\n`, { mode: 0o755 })
  const file = join(dir, 'slow.yaml')
  await writeFile(file, stringify({
    'current-context': 'dev',
    clusters: [{ name: 'dev', cluster: { server: dev.url, 'certificate-authority': 'dev/ca.crt' } }],
    users: [
      { name: 'dev-admin', user: { 'client-certificate': 'dev/client.crt', 'client-key': 'dev/client.key' } },
      { name: 'slow', user: { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: './slow.sh', interactiveMode: 'Never' } } },
    ],
    contexts: [{ name: 'dev', context: { cluster: 'dev', user: 'dev-admin' } }, { name: 'slow', context: { cluster: 'dev', user: 'slow' } }],
  }))
  const proxy = await startProxyWith(t, ['--kubeconfig', file, '--all-contexts', '--port', '0'])
  const waiting = get(`${proxy.url}/clusters/slow/api/v1/pods`)
  await until(() => existsSync(started), 5_000)
  const stopping = Date.now()
  await proxy.app.close()
  const answer = await waiting
  t.equal(answer.status, 503)
  t.match(json(answer.body), { message: /cluster 'slow' cannot be served: mtls-proxy is shutting down/ })
  t.ok(Date.now() - stopping < PLUGIN_MS / 2, `without waiting for the plugin: answered ${Date.now() - stopping} ms after the stop`)
})

t.test('kubectl through /clusters/NAME: get, watch and exec reach each cluster', { skip: kubectl ? false : NO_KUBECTL }, async (t) => {
  const dev = await startDemoUpstream(t, devPki)
  const prod = await startDemoUpstream(t, prodPki)
  const file = await kubeconfig('kubectl.yaml', { dev: dev.url, prod: prod.url })
  const proxy = await startProxyWith(t, ['--kubeconfig', file, '--all-contexts', '--port', '0'])
  const home = await tempDir(t, 'kubectl')
  const env = { PATH: process.env.PATH, HOME: home, KUBECONFIG: join(home, 'none') }
  const server = `${proxy.url}/clusters/prod`
  const k = (...args: string[]) => run(kubectl!, ['--server', server, '--cache-dir', join(home, 'cache'), ...args], { env, timeout: 30_000 })

  t.match((await k('get', 'pods')).stdout, /web-7d4b9c6f5-abcde\s+1\/1\s+Running/)
  await k('run', 'only-in-prod', '--image', 'nginx', '--restart', 'Never')
  t.match((await k('get', 'pods')).stdout, /only-in-prod/, 'created in prod')
  const devPods = await run(kubectl!, ['--server', `${proxy.url}/clusters/dev`, '--cache-dir', join(home, 'cache'), 'get', 'pods'],
    { env, timeout: 30_000 })
  t.notMatch(devPods.stdout, /only-in-prod/, 'and not in dev')

  // A watch through the prefix sees a pod created after it began.
  const watch = spawn(kubectl!, ['--server', server, '--cache-dir', join(home, 'cache'), 'get', 'pods', '--watch'], { env })
  t.teardown(() => { watch.kill() })
  let seen = ''
  watch.stdout.on('data', (chunk: Buffer) => { seen += chunk.toString() })
  await until(() => seen.includes('only-in-prod'), 10_000)
  await k('run', 'watched', '--image', 'nginx', '--restart', 'Never')
  await until(() => seen.includes('watched'), 10_000)
  t.match(seen, /watched/, 'the watch saw the new pod')
  watch.kill()

  const hello = await k('exec', 'web-7d4b9c6f5-abcde', '--', 'echo', 'hello', 'prod')
  t.equal(hello.stdout, 'hello prod\n', 'exec through the prefix')
  const tunnels = () => proxy.logs.filter((l) => l.msg === 'request' && l.upgrade === 'websocket' && l.cluster === 'prod')
  await until(() => tunnels().length >= 1)
  t.equal(tunnels()[0]!.status, 101)
})

t.test('kubectl port-forward through /clusters/NAME reaches that cluster\'s API server', { skip: kubectl ? false : NO_KUBECTL }, async (t) => {
  // Just enough API for kubectl to find the pod and see it running.
  const pod = (req: IncomingMessage, res: ServerResponse) => {
    const answers: Record<string, unknown> = {
      '/api': { kind: 'APIVersions', versions: ['v1'] },
      '/apis': { kind: 'APIGroupList', apiVersion: 'v1', groups: [] },
      '/api/v1': {
        kind: 'APIResourceList',
        groupVersion: 'v1',
        resources: [{ name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs: ['get', 'list'] },
          { name: 'pods/portforward', singularName: '', namespaced: true, kind: 'PodPortForwardOptions', verbs: ['create', 'get'] }],
      },
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify(answers[(req.url ?? '').split('?')[0]!] ??
      { kind: 'Pod', apiVersion: 'v1', metadata: { name: 'web', namespace: 'default' }, status: { phase: 'Running' } }))
  }
  const { upstream, upgrades } = await startTunnelUpstream(t, prodPki, pod)
  const dev = await startUpstream(t, devPki, whoAmI)
  const file = await kubeconfig('port-forward.yaml', { dev: dev.url, prod: upstream.url })
  const proxy = await startProxyWith(t, ['--kubeconfig', file, '--all-contexts', '--port', '0'])
  const home = await tempDir(t, 'kubectl')
  const env = { PATH: process.env.PATH, HOME: home, KUBECONFIG: join(home, 'none') }
  const forward = spawn(kubectl!, ['--server', `${proxy.url}/clusters/prod`, '--cache-dir', join(home, 'cache'), 'port-forward', 'pod/web', ':8080'], { env })
  t.teardown(() => { forward.kill() })
  let out = ''
  forward.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  forward.stderr.on('data', (chunk: Buffer) => { out += chunk.toString() })
  await until(() => upgrades.length > 0, 10_000)
  t.match(upgrades[0], { url: '/api/v1/namespaces/default/pods/web/portforward', cn: 'prod-admin' }, 'the prod API server, as prod-admin')
  t.match(upgrades[0]!.headers['sec-websocket-protocol'], /portforward\.k8s\.io/)
  await until(() => /Forwarding from 127\.0\.0\.1:\d+ -> 8080/.test(out), 10_000)
  t.match(out, /Forwarding from 127\.0\.0\.1:\d+ -> 8080/, 'kubectl holds the tunnel open (its bytes are relayed as in upgrade.test.ts)')
  forward.kill()
})

t.test('EKS context names reach their cluster through kubectl, however it escapes them: --server and run mode', { skip: kubectl ? false : NO_KUBECTL }, async (t) => {
  const dev = await startDemoUpstream(t, devPki)
  const prod = await startDemoUpstream(t, prodPki)
  const file = await kubeconfig('eks.yaml', { dev: dev.url, prod: prod.url })
  const proxy = await startProxyWith(t, ['--kubeconfig', file, '--all-contexts', '--port', '0'])
  const home = await tempDir(t, 'kubectl')
  const env = { PATH: process.env.PATH, HOME: home, KUBECONFIG: join(home, 'none') }
  const arn = 'arn:aws:eks:eu-west-1:1:cluster/team'
  // kubectl decodes %2F in --server's path and sends the name with a bare slash.
  await run(kubectl!, ['--server', `${proxy.url}/clusters/${encodeURIComponent(arn)}`, '--cache-dir', join(home, 'cache'),
    'run', 'made-in-team', '--image', 'nginx', '--restart', 'Never'], { env, timeout: 30_000 })
  const listed = await run(kubectl!, ['--server', `${proxy.url}/clusters/${encodeURIComponent(arn)}`, '--cache-dir', join(home, 'cache'),
    'get', 'pods', '-o', 'name', '-v=6'], { env, timeout: 30_000 })
  t.match(listed.stdout, /pod\/made-in-team/, 'kubectl --server …/clusters/arn%3A…%2Fteam reaches the ARN\'s cluster')
  t.match(listed.stderr, /GET http:\/\/127\.0\.0\.1:\d+\/clusters\/arn:aws:eks:eu-west-1:1:cluster\/team\/api\/v1\/namespaces\/default\/pods/,
    'as it sends it: the slash bare')
  const names = async (cluster: string) => (await run(kubectl!, ['--server', `${proxy.url}/clusters/${cluster}`, '--cache-dir', join(home, 'cache'),
    'get', 'pods', '-o', 'name'], { env, timeout: 30_000 })).stdout
  t.match(await names('prod'), /pod\/made-in-team/, 'created in prod, the ARN context\'s cluster')
  t.notMatch(await names('dev'), /made-in-team/, 'not in dev')

  const inside = await runCli(['--kubeconfig', file, '--all-contexts', '--', kubectl!, '--context', arn, 'get', 'pods', '-o', 'name'],
    { HOME: home }, 30_000)
  t.equal(inside.code, 0, 'kubectl inside exits 0', { stderr: inside.stderr })
  t.match(inside.stdout, /pod\/made-in-team/, 'run mode: kubectl --context arn:… acts on that cluster')
})

t.test('no process the proxy starts is given the settings that carry its secrets: another cluster\'s plugin, a worker, the command', async (t) => {
  const dev = await startUpstream(t, devPki, whoAmI)
  const prod = await startUpstream(t, prodPki, whoAmI)
  const seen = join(dir, 'plugin-env')
  await writeFile(join(dir, 'env-plugin.sh'), `#!/bin/sh\nenv > '${seen}'\ncat '${join(dir, 'credential.json')}'\n`, { mode: 0o755 })
  const file = join(dir, 'env.yaml')
  await writeFile(file, stringify({
    'current-context': 'dev',
    clusters: [{ name: 'dev', cluster: { server: dev.url, 'certificate-authority': 'dev/ca.crt' } },
      { name: 'prod', cluster: { server: prod.url, 'certificate-authority': 'prod/ca.crt' } }],
    users: [{ name: 'dev-admin', user: { 'client-certificate': 'nowhere/client.crt', 'client-key': 'nowhere/client.key' } },
      { name: 'third-party', user: { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: './env-plugin.sh', interactiveMode: 'Never' } } }],
    contexts: [{ name: 'dev', context: { cluster: 'dev', user: 'dev-admin' } }, { name: 'prod', context: { cluster: 'prod', user: 'third-party' } }],
  }))
  // The default cluster's key and certificate come from the environment, as a Secret passed as env would.
  const secrets = {
    MTLS_PROXY_CERT_DATA: await readFile(devFiles.cert, 'utf8'),
    MTLS_PROXY_KEY_DATA: await readFile(devFiles.key, 'utf8'),
    MTLS_PROXY_CACERT_DATA: await readFile(devFiles.cacert, 'utf8'),
  }
  const leaked = (text: string) => ['MTLS_PROXY_CERT_DATA', 'MTLS_PROXY_KEY_DATA', 'MTLS_PROXY_CACERT_DATA', '_MTLS_PROXY_', 'PRIVATE KEY']
    .filter((name) => text.includes(name))
  for (const workers of ['1', '2']) {
    await rm(seen, { force: true })
    const proxy = await startCli(t, ['--kubeconfig', file, '--all-contexts', '--workers', workers], secrets)
    t.match(json((await get(`${proxy.url}/api`)).body), { cn: 'demo-admin' }, 'the default cluster from the environment\'s key')
    t.match(json((await get(`${proxy.url}/clusters/prod/api`)).body), { cn: 'prod-admin' }, 'prod through its plugin')
    t.same(leaked(await readFile(seen, 'utf8')), [], `--workers ${workers}: the plugin of another cluster saw none of them`)
    proxy.child.kill('SIGTERM')
    await proxy.exited
  }
  const inside = await runCli(['--upstream', dev.url, '--', 'env'], secrets)
  t.equal(inside.code, 0, 'the command exits 0', { stderr: inside.stderr })
  t.match(inside.stdout, /^MTLS_PROXY_TOKEN=/m, 'the command gets what it needs')
  t.same(leaked(inside.stdout), [], 'and none of the proxy\'s secrets')
})

t.test('run mode: a context named mtls-proxy is that cluster inside the command, never the default', { skip: kubectl ? false : NO_KUBECTL }, async (t) => {
  const dev = await startDemoUpstream(t, devPki)
  const prod = await startDemoUpstream(t, prodPki)
  const file = join(dir, 'named-mtls-proxy.yaml')
  await writeFile(file, stringify({
    'current-context': 'dev',
    clusters: [{ name: 'dev', cluster: { server: dev.url, 'certificate-authority': 'dev/ca.crt' } },
      { name: 'prod', cluster: { server: prod.url, 'certificate-authority': 'prod/ca.crt' } }],
    users: [{ name: 'dev-admin', user: { 'client-certificate': 'dev/client.crt', 'client-key': 'dev/client.key' } },
      { name: 'prod-admin', user: { 'client-certificate': 'prod/client.crt', 'client-key': 'prod/client.key' } }],
    contexts: [{ name: 'dev', context: { cluster: 'dev', user: 'dev-admin' } }, { name: 'mtls-proxy', context: { cluster: 'prod', user: 'prod-admin' } }],
  }))
  // Only prod has this pod: who answers tells which cluster was asked.
  const made = await runCli(['--kubeconfig', file, '--all-contexts', '--', kubectl!, '--context', 'mtls-proxy', 'run', 'prod-only', '--image', 'nginx',
    '--restart', 'Never', '-v=6'], { HOME: dir }, 30_000)
  t.equal(made.code, 0, 'kubectl run exits 0', { stderr: made.stderr })
  t.match(made.stderr, /POST https:\/\/127\.0\.0\.1:\d+\/clusters\/mtls-proxy\/api\/v1\/namespaces\/default\/pods/, '--context mtls-proxy asks /clusters/mtls-proxy/')
  const names = async (context: string[]) =>
    (await runCli(['--kubeconfig', file, '--all-contexts', '--', kubectl!, ...context, 'get', 'pods', '-o', 'name'], { HOME: dir }, 30_000)).stdout
  t.match(await names(['--context', 'mtls-proxy']), /pod\/prod-only/, 'the cluster named mtls-proxy, prod')
  t.notMatch(await names([]), /prod-only/, 'the current context is the default cluster, dev')
  t.notMatch(await names(['--context', 'dev']), /prod-only/)
})

t.test('a path rule written for the prefix, which never matches with several clusters, is warned about at start', async (t) => {
  const rules = (flag: string, ...sources: string[]) => ({ flag, patterns: sources.map((s) => new RegExp(s, 'i')) })
  const warned = rulesNamingPrefix([rules('--reject-paths', '^/clusters/prod', '^/api/v1/secrets', '/exec$', 'prod/api'),
    rules('--accept-paths', '^.*', '^/clusters/')], ['dev', 'prod'])
  t.same(warned.map((w) => w.split(' never')[0]), ["--reject-paths '^/clusters/prod'", "--reject-paths 'prod/api'", "--accept-paths '^/clusters/'"])
  const dev = await startUpstream(t, devPki, whoAmI)
  const prod = await startUpstream(t, prodPki, whoAmI)
  const proxy = await startProxyWith(t, ['--kubeconfig', await kubeconfig('rules.yaml', { dev: dev.url, prod: prod.url }), '--all-contexts',
    '--port', '0', '--reject-paths', '^/clusters/prod/api/v1/secrets'])
  t.ok(proxy.logs.some((l) => l.level === 40 && /^--reject-paths '\^\/clusters\/prod\/api\/v1\/secrets' never matches: .*after \/clusters\/NAME/.test(String(l.msg))))
})
