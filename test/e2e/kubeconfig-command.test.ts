// `mtls-proxy kubeconfig`: a kubeconfig for a resident proxy, as YAML the way `kubectl config view`
// prints it (JSON with -o json), a context per cluster served, each in the namespace of its
// kubeconfig context, all named from the kubeconfig alone: no credential read, no plugin run. The
// real CLI, as a child, beside a real proxy; kubectl reads what it prints.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { parse, stringify } from 'yaml'
import { pkiWithFiles } from '../helpers/pki.js'
import { startDemoUpstream } from '../helpers/upstream.js'
import { runCli, startCli } from '../helpers/cli.js'
import { findKubectl, NO_KUBECTL } from '../helpers/kubectl.js'
import { tempDir } from '../helpers/temp.js'
import { namespacedKubeconfig } from '../helpers/clusters.js'

const run = promisify(execFile)
const kubectl = findKubectl()
const { pki, files } = await pkiWithFiles(t)
const upstream = await startDemoUpstream(t, pki)
// No kubeconfig where kubectl looks, unless a test writes one: the machine's own is never read.
const home = await tempDir(t, 'home')
const env = { HOME: home }

const kubeconfig = (name: string) => namespacedKubeconfig(join(home, name), upstream.url, files)

interface Printed {
  'current-context': string
  clusters: Array<{ name: string; cluster: { server: string } }>
  contexts: Array<{ name: string; context: { cluster: string; namespace?: string } }>
}
/** context → [server, namespace] */
const contexts = (doc: Printed) => Object.fromEntries(doc.contexts.map((c) =>
  [c.name, [doc.clusters.find((x) => x.name === c.context.cluster)!.cluster.server, c.context.namespace ?? '']]))

/** A resident proxy serving three clusters (--all-contexts and clusters:), and the kubeconfig printed for it. */
async function severalClusters (t: Parameters<typeof tempDir>[0], name: string) {
  const config = join(home, `${name}.yaml`)
  // clusters: takes staging's context again, under a name YAML 1.1 reads as a boolean unless quoted.
  await writeFile(config, stringify({ kubeconfig: await kubeconfig(`${name}-kubeconfig.yaml`), 'all-contexts': true, clusters: [{ name: 'yes', context: 'staging' }] }))
  const proxy = await startCli(t, ['--config', config], env)
  const print = (...more: string[]) => runCli(['kubeconfig', '--config', config, '--port', String(proxy.port), ...more], env)
  return { server: `http://127.0.0.1:${proxy.port}`, printed: await print(), print }
}

t.test('a resident proxy with several clusters: YAML with a context for each, in its namespace', async (t) => {
  const { server, printed, print } = await severalClusters(t, 'several')
  t.equal(printed.code, 0, 'exits 0', { stderr: printed.stderr })
  t.equal(printed.stderr, '')
  t.match(printed.stdout, /^apiVersion: v1\nclusters:\n- cluster:\n/, 'YAML, as kubectl config view prints it')
  t.same(contexts(parse(printed.stdout) as Printed), {
    'mtls-proxy': [server, ''],
    plain: [`${server}/clusters/plain`, ''],
    staging: [`${server}/clusters/staging`, 'kube-system'],
    yes: [`${server}/clusters/yes`, 'kube-system'],
  })
  t.same(JSON.parse((await print('-o', 'json')).stdout), parse(printed.stdout), '-o json: the same kubeconfig as JSON')
})

t.test('kubectl with the printed kubeconfig acts in each context\'s namespace', { skip: kubectl ? false : NO_KUBECTL }, async (t) => {
  const { server, printed } = await severalClusters(t, 'with-kubectl')
  const file = join(home, 'printed.yaml')
  await writeFile(file, printed.stdout)
  // -v=6 shows each URL kubectl asks for.
  const k = (...args: string[]) => run(kubectl!, ['--kubeconfig', file, '--cache-dir', join(home, 'cache'), ...args, '-v=6'],
    { env: { PATH: process.env.PATH, HOME: home }, timeout: 30_000 })
  const url = (path: string) => new RegExp(`GET ${server.replace(/\./g, '\\.')}${path}\\?limit=500 200 OK`)
  const root = await k('get', 'pods')
  t.match(root.stdout, /web-7d4b9c6f5-abcde/, 'the current context: the default cluster, plain, in default')
  t.match(root.stderr, url('/api/v1/namespaces/default/pods'))
  t.match((await k('--context', 'staging', 'get', 'pods')).stderr, url('/clusters/staging/api/v1/namespaces/kube-system/pods'), 'staging, in kube-system')
  t.match((await k('--context', 'yes', 'get', 'pods')).stderr, url('/clusters/yes/api/v1/namespaces/kube-system/pods'), 'yes, quoted, read as a name')
})

t.test('it reads no credential and runs no exec plugin: the contexts\' names and namespaces alone', async (t) => {
  const marker = join(home, 'plugin-ran')
  const file = join(home, 'plugins.yaml')
  await writeFile(file, stringify({
    'current-context': 'vault',
    clusters: [{ name: 'far', cluster: { server: 'https://127.0.0.1:1', 'certificate-authority': join(home, 'no-such-ca.crt') } }],
    users: [{
      name: 'sso',
      user: { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'sh', args: ['-c', `touch ${marker}`], provideClusterInfo: true } },
    }, { name: 'nothing', user: {} }],
    contexts: [{ name: 'vault', context: { cluster: 'far', user: 'sso', namespace: 'team-v' } },
      { name: 'bare', context: { cluster: 'far', user: 'nothing', namespace: 'team-n' } }],
  }))
  const printed = await runCli(['kubeconfig', '--kubeconfig', file, '--all-contexts'], env)
  t.equal(printed.code, 0, 'exits 0', { stderr: printed.stderr })
  t.same(contexts(parse(printed.stdout) as Printed), {
    'mtls-proxy': ['http://127.0.0.1:8001', 'team-v'],
    vault: ['http://127.0.0.1:8001/clusters/vault', 'team-v'],
    bare: ['http://127.0.0.1:8001/clusters/bare', 'team-n'],
  })
  t.notOk(existsSync(marker), 'the exec plugin never ran')
})

t.test('with no kubeconfig where kubectl looks and none named: the proxy\'s address alone', async (t) => {
  const printed = await runCli(['kubeconfig', '--port', '9000'], env)
  t.equal(printed.code, 0, 'exits 0', { stderr: printed.stderr })
  t.same(parse(printed.stdout), {
    apiVersion: 'v1',
    clusters: [{ cluster: { server: 'http://127.0.0.1:9000' }, name: 'mtls-proxy' }],
    contexts: [{ context: { cluster: 'mtls-proxy', user: 'mtls-proxy' }, name: 'mtls-proxy' }],
    'current-context': 'mtls-proxy',
    kind: 'Config',
    preferences: {},
    users: [{ name: 'mtls-proxy', user: {} }],
  })
  t.match(contexts(parse((await runCli(['kubeconfig', '--address', '::1'], env)).stdout) as Printed), { 'mtls-proxy': ['http://[::1]:8001', ''] })
  t.match(contexts(parse((await runCli(['kubeconfig'], { ...env, MTLS_PROXY_PORT: '9100' })).stdout) as Printed),
    { 'mtls-proxy': ['http://127.0.0.1:9100', ''] }, 'its port from the variable the proxy reads too')
})

t.test('mistakes are one line and exit 2', async (t) => {
  const file = await kubeconfig('mistakes.yaml')
  const cases: Array<[string[], RegExp]> = [
    [['--kubeconfig', file, '--context', 'nope'], /^mtls-proxy: kubeconfig .*mistakes\.yaml: no context named 'nope' \(--context\); it has 'plain', 'staging'\n$/],
    [['--kubeconfig', join(home, 'missing.yaml')], /^mtls-proxy: cannot read kubeconfig .*missing\.yaml: no such file\n$/],
    [['--all-contexts'], /^mtls-proxy: no kubeconfig found: looked for ~\/\.kube\/config .*\n$/],
    [['-o', 'xml'], /^mtls-proxy: --output must be yaml or json, got 'xml'\n$/],
    [['--port', 'x'], /^mtls-proxy: --port must be a number, got 'x'\n$/],
    [['--upstream', upstream.url], /^mtls-proxy: mtls-proxy kubeconfig takes the settings that name the clusters and where the proxy listens, not --upstream \(usage: .*\)\n$/],
  ]
  for (const [args, message] of cases) {
    const exit = await runCli(['kubeconfig', ...args], env)
    t.equal(exit.code, 2, args.join(' '))
    t.match(exit.stderr, message)
    t.equal(exit.stdout, '', 'and prints nothing')
  }
})
