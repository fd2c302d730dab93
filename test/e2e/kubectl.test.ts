// A real client end to end: kubectl 1.32 against the demo API server, through mtls-proxy.
import { execFile } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { stringify } from 'yaml'
import { pkiWithFiles } from '../helpers/pki.js'
import { echoHandler, startDemoUpstream, startUpstream } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'
import { until } from '../helpers/until.js'
import { findKubectl, NO_KUBECTL } from '../helpers/kubectl.js'
import { tempDir } from '../helpers/temp.js'

const run = promisify(execFile)

const kubectl = findKubectl()

/** The demo API server, mtls-proxy in front, and kubectl with a throwaway home pointed at the proxy. */
async function kubectlThroughProxy (t: Parameters<typeof pkiWithFiles>[0]) {
  const { pki, files } = await pkiWithFiles(t)
  const api = await startDemoUpstream(t, pki)
  const proxy = await startProxy(t, api.url, files)
  const home = await tempDir(t, 'kubectl')
  const env = { PATH: process.env.PATH, HOME: home, KUBECONFIG: join(home, 'no-kubeconfig') }
  const k = (...args: string[]) => run(kubectl!, ['--server', proxy.url, '--cache-dir', join(home, 'cache'), ...args], { env, timeout: 30_000 })
  return { api, proxy, k, home }
}

t.test('kubectl --server http://127.0.0.1:PORT get pods prints the pods', { skip: kubectl ? false : NO_KUBECTL }, async (t) => {
  const { api, k, home } = await kubectlThroughProxy(t)

  const table = await k('get', 'pods')
  t.match(table.stdout, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\n/)
  t.match(table.stdout, /web-7d4b9c6f5-abcde\s+1\/1\s+Running/)
  t.match(table.stdout, /db-0\s+1\/1\s+Running/)

  const json = JSON.parse((await k('get', 'pods', '-o', 'json')).stdout) as { items: Array<{ metadata: { name: string } }> }
  t.same(json.items.map((i) => i.metadata.name), ['web-7d4b9c6f5-abcde', 'db-0'])

  const version = JSON.parse((await k('get', '--raw', '/version')).stdout) as { gitVersion: string }
  t.equal(version.gitVersion, 'v1.32.0-mtls-proxy-demo')

  const missing = await k('get', 'pod', 'nope').then(() => undefined, (err: { stderr: string }) => err.stderr)
  t.match(missing, /Error from server \(NotFound\): pods "nope" not found/, 'upstream Status reaches kubectl untouched')

  await api.close()
  const down = await k('get', 'pods').then(() => undefined, (err: { stderr: string }) => err.stderr)
  t.match(down, /upstream 127\.0\.0\.1:\d+ refused the connection/, 'kubectl prints the proxy\'s Status message when the upstream is down')
  // A cold discovery cache: kubectl first asks /api and /apis, whose errors it reads only as text.
  const cold = await k('--cache-dir', join(home, 'cold-cache'), 'get', 'pods').then(() => undefined, (err: { stderr: string }) => err.stderr)
  t.match(cold, /upstream 127\.0\.0\.1:\d+ refused the connection/, 'and with a cold discovery cache too')
  t.notMatch(cold, /"unknown"/)
})

t.test('a mistyped cluster name: kubectl prints the proxy\'s message and the names served, as they go in a URL', { skip: kubectl ? false : NO_KUBECTL }, async (t) => {
  const { pki, files } = await pkiWithFiles(t)
  const api = await startDemoUpstream(t, pki)
  const config = join(files.dir, 'clusters.yaml')
  await writeFile(config, stringify({ clusters: [{ name: 'prod/eu west', upstream: api.url, cacert: files.cacert, cert: files.cert, key: files.key }] }))
  const proxy = await startProxy(t, api.url, files, ['--config', config])
  const home = await tempDir(t, 'kubectl')
  const env = { PATH: process.env.PATH, HOME: home, KUBECONFIG: join(home, 'no-kubeconfig') }
  const k = (server: string, ...args: string[]) => run(kubectl!, ['--server', server, '--cache-dir', join(home, 'cache'), ...args], { env, timeout: 30_000 })

  const typo = await k(`${proxy.url}/clusters/typo`, 'get', 'pods').then(() => '', (err: { stderr: string }) => err.stderr)
  const said = "mtls-proxy serves no cluster named 'typo' (/clusters/NAME/, the name URI-encoded); it serves 'default', 'prod%2Feu%20west'"
  t.ok(typo.trimEnd().endsWith(`Error from server (Forbidden): ${said}`), 'kubectl ends with the proxy\'s message and the names, encoded')
  t.notMatch(typo, /could not find the requested resource/, 'not the 404 kubectl\'s discovery words itself')
  const lines = typo.trimEnd().split('\n')
  // client-go's cache logs each failed discovery (five of them) before the error itself: as many as kubectl allows.
  t.ok(lines.every((line) => line.includes(said)), 'every line kubectl prints carries it')
  t.ok(lines.length <= 6, `${lines.length} lines`)

  const listed = await k(`${proxy.url}/clusters/${encodeURIComponent('prod/eu west')}`, 'get', 'pods')
  t.match(listed.stdout, /web-7d4b9c6f5-abcde/, 'the name as the message writes it reaches that cluster')
  const raw = await k(proxy.url, 'get', '--raw', '/clusters/typo/version').then(() => '', (err: { stderr: string }) => err.stderr)
  t.match(raw, /Error from server \(NotFound\): mtls-proxy serves no cluster named 'typo'/, 'past discovery, it is the 404 it is')
})

t.test('kubectl exec POD -- CMD through the proxy: output and exit status over the v5 channel protocol', { skip: kubectl ? false : NO_KUBECTL }, async (t) => {
  const { proxy, k } = await kubectlThroughProxy(t)

  const hello = await k('exec', 'web-7d4b9c6f5-abcde', '--', 'echo', 'hello', 'through', 'mtls-proxy')
  t.equal(hello.stdout, 'hello through mtls-proxy\n', 'stdout arrives on channel 1')
  const host = await k('exec', 'db-0', '-c', 'app', '--', 'hostname')
  t.equal(host.stdout, 'db-0\n')
  const failed = await k('exec', 'db-0', '--', 'sh', '-c', 'exit 3').then(() => ({ code: 0, stderr: '' }), (err: { code: number; stderr: string }) => err)
  t.equal(failed.code, 3, 'kubectl exits with the command\'s exit status (Status on channel 3)')
  t.match(failed.stderr, /command terminated with exit code 3/)
  const tunnels = () => proxy.logs.filter((l) => l.msg === 'request' && l.upgrade === 'websocket')
  // A tunnel's line is written when its socket closes, which may be a moment after kubectl exits.
  await until(() => tunnels().length >= 3)
  t.ok(tunnels().length >= 3, 'each exec went through an upgrade tunnel')
  t.ok(tunnels().every((l) => l.status === 101))
})

t.test('kubectl --as jane --as-group devs --as-group ops: each group reaches the API server as its own header line', { skip: kubectl ? false : NO_KUBECTL }, async (t) => {
  const { pki, files } = await pkiWithFiles(t)
  const upstream = await startUpstream(t, pki, echoHandler)
  const proxy = await startProxy(t, upstream.url, files)
  const home = await tempDir(t, 'kubectl')
  const env = { PATH: process.env.PATH, HOME: home, KUBECONFIG: join(home, 'no-kubeconfig') }
  await run(kubectl!, ['--server', proxy.url, '--cache-dir', join(home, 'cache'), '--as', 'jane', '--as-group', 'devs', '--as-group', 'ops',
    'get', '--raw', '/api/v1/namespaces/default/pods'], { env, timeout: 30_000 })
  const raw = upstream.calls().at(-1)!.rawHeaders
  const groups = raw.filter((_, i, a) => i % 2 === 1 && a[i - 1]!.toLowerCase() === 'impersonate-group')
  t.same(groups, ['devs', 'ops'], 'two lines, not one "devs, ops" group')
  t.equal(upstream.calls().at(-1)!.headers['impersonate-user'], 'jane')
})
