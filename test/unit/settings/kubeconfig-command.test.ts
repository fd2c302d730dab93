// `mtls-proxy kubeconfig`'s settings (src/settings/kubeconfig-command.ts): the ones that name the
// clusters and where the proxy listens, from flags, MTLS_PROXY_* and the config file as the proxy
// reads them, and the output format; a mistake is one UsageError.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig } from '../../../src/settings/load.js'
import type { KubeconfigCommand } from '../../../src/settings/types.js'
import { UsageError } from '../../../src/util/errors.js'
import { tempDir } from '../../helpers/temp.js'

const dir = await tempDir(t, 'kubeconfig-command')
const config = join(dir, 'proxy.yaml')
await writeFile(config, 'kubeconfig: from-file.yaml\ncontext: file-context\nport: 9100\nclusters:\n  - name: extra\n    context: other\n')
const HOME = { HOME: join(dir, 'home') }

function command (argv: string[], env: NodeJS.ProcessEnv = HOME): KubeconfigCommand {
  const line = loadConfig(['kubeconfig', ...argv], env, dir)
  if (line.action !== 'kubeconfig') throw new Error(`expected kubeconfig, got ${line.action}`)
  return line
}

/** What each case comes to: where, the format, the default cluster's kubeconfig and context, --all-contexts, clusters:. */
const seen = (c: KubeconfigCommand) => ({
  at: `${c.address}:${c.port}`,
  output: c.output,
  files: c.clusterSettings.credentials.kubeconfig?.files,
  context: c.clusterSettings.credentials.kubeconfig?.context,
  all: c.clusterSettings.allContexts,
  clusters: c.clusterSettings.clusters.map((x) => `${x.name}=${x.credentials.kubeconfig?.context ?? ''}`),
  optional: c.kubeconfigOptional,
})

t.test('the proxy\'s settings that name clusters and where it listens, whichever source gives them', async (t) => {
  const implicit = [join(dir, 'home', '.kube', 'config')]
  const cases: Array<[string, string[], NodeJS.ProcessEnv, Partial<ReturnType<typeof seen>>]> = [
    ['nothing: kubectl\'s kubeconfig, optional', [], HOME,
      { at: '127.0.0.1:8001', output: 'yaml', files: implicit, context: undefined, all: false, clusters: [], optional: true }],
    ['$KUBECONFIG, merged as kubectl does', [], { ...HOME, KUBECONFIG: 'a.yaml:b.yaml' }, { files: [join(dir, 'a.yaml'), join(dir, 'b.yaml')], optional: true }],
    ['flags', ['--kubeconfig', 'k.yaml', '--context', 'staging', '--all-contexts', '--address', '::1', '--port', '9000'], HOME,
      { at: '::1:9000', files: [join(dir, 'k.yaml')], context: 'staging', all: true, optional: false }],
    ['a context picked from kubectl\'s kubeconfig is no longer optional', ['--context', 'staging'], HOME, { files: implicit, context: 'staging', optional: false }],
    ['variables', [], { ...HOME, MTLS_PROXY_KUBECONFIG: 'env.yaml', MTLS_PROXY_CONTEXT: 'env-context', MTLS_PROXY_ALL_CONTEXTS: 'true', MTLS_PROXY_PORT: '9200' },
      { at: '127.0.0.1:9200', files: [join(dir, 'env.yaml')], context: 'env-context', all: true }],
    ['a config file, its clusters: too', ['--config', config], HOME,
      { at: '127.0.0.1:9100', files: [join(dir, 'from-file.yaml')], context: 'file-context', clusters: ['extra=other'], optional: false }],
    ['flags beat variables, which beat the file', ['--config', config, '--context', 'flag-context'], { ...HOME, MTLS_PROXY_PORT: '9300' },
      { at: '127.0.0.1:9300', context: 'flag-context' }],
    ['a proxy given its server in variables reads no kubeconfig', [], { ...HOME, MTLS_PROXY_UPSTREAM: 'https://10.0.0.1:6443', MTLS_PROXY_CERT: 'c.crt' },
      { files: undefined }],
    ['-o json', ['-o', 'json'], HOME, { output: 'json' }],
    ['-ojson', ['-ojson'], HOME, { output: 'json' }],
    ['-o=json', ['-o=json'], HOME, { output: 'json' }],
    ['--output=yaml', ['--output=yaml'], HOME, { output: 'yaml' }],
    ['[::1] as the proxy takes it', ['--address', '[::1]'], HOME, { at: '::1:8001' }],
  ]
  for (const [name, argv, env, expected] of cases) t.match(seen(command(argv, env)), expected, name)
})

t.test('mistakes: one line each', async (t) => {
  const cases: Array<[string, string[], NodeJS.ProcessEnv, RegExp]> = [
    ['a format kubectl has but we do not print', ['-o', 'wide'], HOME, /^--output must be yaml or json, got 'wide'$/],
    ['a port the proxy picks', ['--port', '0'], HOME, /^--port must be a whole number from 1 to 65535 \(0 picks a free port at start: give the one it took\), got '0'$/],
    ['a port from a variable, named as a variable', [], { ...HOME, MTLS_PROXY_PORT: '70000' }, /^MTLS_PROXY_PORT must be a whole number from 1 to 65535/],
    ['not a port', ['--port', 'x'], HOME, /^--port must be a number, got 'x'$/],
    ['not an address', ['--address', 'example.com'], HOME, /^--address must be an IP address or localhost/],
    ['a proxy setting that changes nothing here', ['--cacert', 'ca.crt'], HOME,
      /^mtls-proxy kubeconfig takes the settings that name the clusters and where the proxy listens, not --cacert \(usage: mtls-proxy kubeconfig /],
    ['an unknown flag', ['--nope'], HOME, /^Unknown option '--nope' \(usage: /],
    ['--all-contexts with no kubeconfig read', ['--all-contexts'], { ...HOME, MTLS_PROXY_UPSTREAM: 'https://10.0.0.1:6443' }, /^--all-contexts serves every context of a kubeconfig/],
    ['a misspelt variable is said with the mistake', ['-o', 'x'], { ...HOME, MTLS_PROXY_CONTEXTT: 'a' }, /\(also: MTLS_PROXY_CONTEXTT is no setting/],
  ]
  const mistake = (argv: string[], env: NodeJS.ProcessEnv): unknown => {
    try {
      command(argv, env)
    } catch (err) {
      return err
    }
    return undefined
  }
  for (const [name, argv, env, message] of cases) {
    const err = mistake(argv, env)
    t.ok(err instanceof UsageError, `${name}: a UsageError`)
    t.match((err as Error | undefined)?.message, message, name)
  }
})
