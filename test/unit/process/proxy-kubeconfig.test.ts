// The kubeconfig that points a client at the proxy (src/process/proxy-kubeconfig.ts): a context per
// cluster served, each in the namespace of the context it was started from; written as kubectl
// config view writes it, in YAML that kubectl (YAML 1.1) reads back as it was meant.
import t from 'tap'
import { parse } from 'yaml'
import { kubeconfigText, proxyKubeconfig, servedOf, type Served } from '../../../src/process/proxy-kubeconfig.js'
import type { Pins } from '../../../src/clusters/pins.js'

const SERVER = 'http://127.0.0.1:8001'

interface Doc {
  'current-context': string
  clusters: Array<{ name: string; cluster: { server: string } }>
  contexts: Array<{ name: string; context: { cluster: string; user: string; namespace?: string } }>
}

/** name → [server, namespace] for every context, and the current one. */
function contexts (served: Served): { current: string; by: Record<string, [string, string | undefined]> } {
  const doc = proxyKubeconfig(SERVER, served) as unknown as Doc
  const server = (name: string) => doc.clusters.find((c) => c.name === name)!.cluster.server
  return {
    current: doc['current-context'],
    by: Object.fromEntries(doc.contexts.map((c) => [c.name, [server(c.context.cluster), c.context.namespace]])),
  }
}

t.test('each context keeps the namespace of the cluster it names; the root context the default cluster\'s', async (t) => {
  const cases: Array<[string, Served, ReturnType<typeof contexts>]> = [
    ['one cluster, no namespace', { default: { name: 'default' }, clusters: [] },
      { current: 'mtls-proxy', by: { 'mtls-proxy': [SERVER, undefined] } }],
    ['one cluster from a context with one', { default: { name: 'staging', namespace: 'team-b' }, clusters: [] },
      { current: 'mtls-proxy', by: { 'mtls-proxy': [SERVER, 'team-b'] } }],
    ['several', { default: { name: 'dev', namespace: 'team-a' }, clusters: [{ name: 'dev', namespace: 'team-a' }, { name: 'prod' }, { name: 'staging', namespace: 'team-b' }] },
      {
        current: 'mtls-proxy',
        by: {
          'mtls-proxy': [SERVER, 'team-a'],
          dev: [`${SERVER}/clusters/dev`, 'team-a'],
          prod: [`${SERVER}/clusters/prod`, undefined],
          staging: [`${SERVER}/clusters/staging`, 'team-b'],
        },
      }],
    ['a cluster named mtls-proxy: its context is that cluster, the current one the default\'s own',
      { default: { name: 'dev', namespace: 'team-a' }, clusters: [{ name: 'dev', namespace: 'team-a' }, { name: 'mtls-proxy', namespace: 'team-m' }] },
      { current: 'dev', by: { dev: [`${SERVER}/clusters/dev`, 'team-a'], 'mtls-proxy': [`${SERVER}/clusters/mtls-proxy`, 'team-m'] } }],
    ['a name that needs encoding in the path, not in the context', { default: { name: 'a' }, clusters: [{ name: 'a' }, { name: 'arn:aws:eks:x:1:cluster/team', namespace: 'ns' }] },
      { current: 'mtls-proxy', by: { 'mtls-proxy': [SERVER, undefined], a: [`${SERVER}/clusters/a`, undefined], 'arn:aws:eks:x:1:cluster/team': [`${SERVER}/clusters/arn%3Aaws%3Aeks%3Ax%3A1%3Acluster%2Fteam`, 'ns'] } }],
  ]
  for (const [name, served, expected] of cases) t.same(contexts(served), expected, name)
})

t.test('the pins of a start, in the order it serves them', async (t) => {
  const pins = (name: string, clusters: Pins['clusters'], contexts: string[] = []): Pins => ({ name, contexts, clusters, warnings: [] })
  const fromFile = (...names: string[]) => names.map((name) => ({ name, credentials: undefined as never }))
  const cases: Array<[string, Pins, ReturnType<typeof fromFile>, Served]> = [
    ['one', pins('staging', { staging: { context: 'staging', namespace: 'team-b' } }), [], { default: { name: 'staging', namespace: 'team-b' }, clusters: [] }],
    ['no context', pins('default', { default: {} }), [], { default: { name: 'default' }, clusters: [] }],
    ['--all-contexts, then clusters:', pins('dev', { dev: { context: 'dev' }, prod: { context: 'prod', namespace: 'p' }, extra: { namespace: 'x' } }, ['prod']), fromFile('extra'),
      { default: { name: 'dev' }, clusters: [{ name: 'dev' }, { name: 'prod', namespace: 'p' }, { name: 'extra', namespace: 'x' }] }],
    // (names that read as numbers come first among an object's keys: the order is the served one, not the keys')
    ['names that read as numbers', pins('b', { b: {}, 2: { namespace: 'two' }, 1: {} }, ['2', '1']), [],
      { default: { name: 'b' }, clusters: [{ name: 'b' }, { name: '2', namespace: 'two' }, { name: '1' }] }],
  ]
  for (const [name, pinned, clusters, expected] of cases) t.same(servedOf(pinned, clusters), expected, name)
})

t.test('YAML as kubectl config view prints it; JSON with -o json', async (t) => {
  const doc = proxyKubeconfig(SERVER, { default: { name: 'staging', namespace: 'team-b' }, clusters: [] })
  t.equal(kubeconfigText(doc, 'yaml'), [
    'apiVersion: v1',
    'clusters:',
    '- cluster:',
    `    server: ${SERVER}`,
    '  name: mtls-proxy',
    'contexts:',
    '- context:',
    '    cluster: mtls-proxy',
    '    namespace: team-b',
    '    user: mtls-proxy',
    '  name: mtls-proxy',
    'current-context: mtls-proxy',
    'kind: Config',
    'preferences: {}',
    'users:',
    '- name: mtls-proxy',
    '  user: {}',
    '',
  ].join('\n'))
  t.same(JSON.parse(kubeconfigText(doc, 'json')), doc)
  t.ok(kubeconfigText(doc, 'json').endsWith('}\n'))
})

t.test('names YAML 1.1 would read as something else are quoted, and read back as written', async (t) => {
  // kubectl's YAML is 1.1: yes, on, y and off are booleans there, 1:20 a number (base 60), 0755 octal, ~ null.
  const odd = ['yes', 'on', 'Y', 'off', 'NO', 'true', '1:20', '0755', '0x1F', '1_000', '.5', '1e3', '~', 'null', '123', '<<', '-',
    '2001-12-14', 'a: b', '#x', '@x', '*x', '&x', '!x', '|', '>', '%x', 'arn:aws:eks:x:1:cluster/team', ' padded ']
  const served: Served = { default: { name: 'plain' }, clusters: [{ name: 'plain' }, ...odd.map((name) => ({ name, namespace: name }))] }
  const text = kubeconfigText(proxyKubeconfig(SERVER, served), 'yaml')
  const back = parse(text, { version: '1.1' }) as Doc
  t.same(back.contexts.map((c) => [c.name, c.context.namespace]), [['mtls-proxy', undefined], ['plain', undefined], ...odd.map((n) => [n, n])])
  for (const name of ['yes', 'on', '1:20', '0755']) t.match(text, `  name: "${name}"\n`, `${name} is quoted`)
})

t.test('run mode\'s kubeconfig: the run\'s CA and token, and nothing else of the proxy\'s', async (t) => {
  const doc = proxyKubeconfig('https://127.0.0.1:40000', { default: { name: 'default' }, clusters: [] }, { caPem: 'PEM', token: 'tok' })
  t.match(doc, {
    clusters: [{ cluster: { 'certificate-authority-data': Buffer.from('PEM').toString('base64'), server: 'https://127.0.0.1:40000' } }],
    users: [{ name: 'mtls-proxy', user: { token: 'tok' } }],
  })
})
