// Settings: flags beat environment variables, which beat the config file, which beats defaults.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig } from '../../../src/settings/load.js'
import type { Config } from '../../../src/settings/types.js'
import { OPTIONS, envName } from '../../../src/settings/options.js'
import { tempDir } from '../../helpers/temp.js'

const dir = await tempDir(t, 'config')

function run (argv: string[], env: NodeJS.ProcessEnv = {}, cwd = dir): Config {
  const command = loadConfig(argv, env, cwd)
  if (command.action !== 'run') throw new Error(`expected run, got ${command.action}`)
  return command.config
}

const required = ['--upstream', 'https://10.0.0.1:5443', '--cacert', 'ca.crt', '--cert', 'client.crt', '--key', 'client.key']

t.test('defaults', async (t) => {
  const c = run(required)
  t.equal(c.address, '127.0.0.1')
  t.equal(c.port, 8001)
  t.equal(c.logLevel, 'info')
  t.equal(c.accessLog, true)
  t.equal(c.allowNonLoopback, false)
  t.equal(c.credentials.tlsServerName, undefined)
  t.equal(c.connectTimeoutMs, 10_000)
  t.equal(c.responseTimeoutMs, 120_000)
  t.equal(c.shutdownTimeoutMs, 20_000)
  t.equal(c.probePath, '/version')
  t.match(c.credentials.ca, { kind: 'file', path: join(dir, 'ca.crt') }, 'relative paths resolve against the working directory')
  t.equal(c.credentials.server!.href, 'https://10.0.0.1:5443/')
})

t.test('flags beat env, env beats file, file beats defaults', async (t) => {
  const yaml = join(dir, 'proxy.yaml')
  await writeFile(yaml, [
    '# comments are fine',
    'upstream: https://file.example:6443',
    'cacert: certs/ca.crt',
    'cert: certs/client.crt',
    'key: /abs/client.key',
    'port: 9001',
    'log-level: debug',
    'tls-server-name: file-name',
    'access-log: false',
  ].join('\n'))
  const fromFile = run(['--config', yaml])
  t.equal(fromFile.credentials.server!.host, 'file.example:6443')
  t.equal(fromFile.port, 9001)
  t.match(fromFile.credentials.ca, { path: join(dir, 'certs', 'ca.crt') }, 'paths in the file resolve against its folder')
  t.match(fromFile.credentials.key, { path: '/abs/client.key' })
  t.equal(fromFile.accessLog, false)
  t.equal(fromFile.credentials.tlsServerName, 'file-name')

  const env = { MTLS_PROXY_PORT: '9002', MTLS_PROXY_TLS_SERVER_NAME: 'env-name', MTLS_PROXY_ACCESS_LOG: 'true', MTLS_PROXY_CONFIG: yaml }
  const fromEnv = run([], env)
  t.equal(fromEnv.port, 9002, 'env beats file')
  t.equal(fromEnv.credentials.tlsServerName, 'env-name')
  t.equal(fromEnv.accessLog, true)
  t.equal(fromEnv.logLevel, 'debug', 'file beats default')

  const fromFlags = run(['--port', '9003', '--no-access-log', '--tls-server-name', 'flag-name'], env)
  t.equal(fromFlags.port, 9003, 'flag beats env')
  t.equal(fromFlags.credentials.tlsServerName, 'flag-name')
  t.equal(fromFlags.accessLog, false, '--no-access-log beats env')
})

t.test('a JSON config file works too', async (t) => {
  const json = join(dir, 'proxy.json')
  await writeFile(json, JSON.stringify({ upstream: 'https://[fd00::1]:5443', cacert: 'a', cert: 'b', key: 'c', 'probe-interval': 2.5 }))
  const c = run(['--config', json])
  t.equal(c.credentials.server!.hostname, '[fd00::1]')
  t.equal(c.probeIntervalMs, 2500)
})

t.test('mistakes are UsageErrors with precise messages', async (t) => {
  const bad = (argv: string[], message: RegExp, env: NodeJS.ProcessEnv = {}) =>
    t.throws(() => loadConfig(argv, env, dir), { name: 'UsageError', message }, message.source)
  bad([...required, '--port=-1'], /--port must be a whole number/)
  bad([...required, '--port', '1.5'], /--port must be a whole number/)
  bad([...required, '--address', 'example.com'], /--address must be an IP address or localhost/)
  bad([...required, '--address', '192.168.1.10'], /not a loopback address/)
  bad([...required, '--log-level', 'loud'], /--log-level must be one of fatal, error, warn, info, debug, trace, silent/)
  bad([...required, '--connect-timeout', '0'], /--connect-timeout must be more than zero, got 0 s/)
  bad([...required, '--probe-path', 'version'], /--probe-path must start with \//)
  bad(['--upstream', 'not a url', '--cacert', 'a', '--cert', 'b', '--key', 'c'], /is not a URL/)
  bad(['--upstream', 'https://u:p@h:1', '--cacert', 'a', '--cert', 'b', '--key', 'c'], /must not hold a user name or password/)
  bad(['--upstream', 'https://h:1/?x=1', '--cacert', 'a', '--cert', 'b', '--key', 'c'], /must not have a query/)
  bad(['--upstream', 'https://h:1'], /missing --cacert/)
  bad([...required, 'extra'], /Unexpected argument 'extra'/)
  bad(required, /^MTLS_PROXY_ACCESS_LOG must be true or false, got 'maybe'$/, { MTLS_PROXY_ACCESS_LOG: 'maybe' })
  const list = join(dir, 'list.yaml')
  await writeFile(list, '- a\n- b\n')
  bad(['--config', list], /must hold a mapping of settings/)
  const broken = join(dir, 'broken.yaml')
  await writeFile(broken, 'upstream: [\n')
  bad(['--config', broken], /is not valid YAML or JSON/)
  const wrongType = join(dir, 'wrong.yaml')
  await writeFile(wrongType, 'port: eighty\n')
  bad(['--config', wrongType], /^'port' \(config file .*wrong\.yaml\) must be a number, got 'eighty'$/)
  bad(['--config', join(dir, 'missing.yaml')], /cannot read config file .*missing\.yaml: no such file/)
})

t.test('a setting given empty takes its default', async (t) => {
  const c = run([...required, '--address', '', '--log-level', '', '--probe-path', ''])
  t.equal(c.address, '127.0.0.1')
  t.equal(c.logLevel, 'info')
  t.equal(c.probePath, '/version')
})

t.test('a non-loopback address needs the explicit opt-in', async (t) => {
  const c = run([...required, '--address', '0.0.0.0', '--allow-non-loopback', '--allow-unauthenticated'])
  t.equal(c.address, '0.0.0.0')
  t.equal(run([...required, '--address', '::1']).address, '::1')
  t.equal(run([...required, '--address', '[::1]']).address, '::1')
  t.equal(run([...required, '--address', '127.0.0.2']).address, '127.0.0.2')
})

t.test('help and version are actions, not runs', async (t) => {
  t.same(loadConfig(['--help'], {}), { action: 'help' })
  t.same(loadConfig(['-h'], {}), { action: 'help' })
  t.same(loadConfig(['--version'], {}), { action: 'version' })
})

t.test('every setting has a flag (secrets excepted), an environment variable and a config key', async (t) => {
  const sample = { string: 'x', boolean: true, number: 1, duration: '1s' }
  // Whatever else a value may be refused for, it is never refused as an unknown name.
  const unknown = /Unknown option|is no setting of mtls-proxy|has no flag/
  const said = (f: () => unknown) => { try { f(); return '' } catch (err) { return (err as Error).message } }
  for (const o of OPTIONS) {
    t.ok(o.help.length > 10, `${o.name} is explained`)
    const value = sample[o.type]
    const flag = said(() => loadConfig(typeof value === 'boolean' ? [`--${o.name}`] : [`--${o.name}`, String(value)], {}, dir))
    if ('noFlag' in o && o.noFlag) t.match(flag, new RegExp(`^--${o.name} has no flag: every local user sees a command line in ps`), `${o.name}: no flag, as it holds a secret`)
    else t.notMatch(flag, unknown, `--${o.name} is a flag`)
    t.notMatch(said(() => loadConfig([], { [envName(o.name)]: String(value) }, dir)), unknown, `${envName(o.name)} is read`)
    const file = join(dir, `key-${o.name}.yaml`)
    await writeFile(file, `${o.name}: ${JSON.stringify(value)}\n`)
    t.notMatch(said(() => loadConfig(['--config', file], {}, dir)), unknown, `'${o.name}:' is a config key`)
  }
})

t.test('durations as Kubernetes writes them, or seconds, from flags, environment and config file', async (t) => {
  const dir = await tempDir(t, 'durations')
  const file = join(dir, 'c.yaml')
  await writeFile(file, 'connect-timeout: 2s\nprobe-interval: 1.5\n')
  const base = required
  const c = run([...base, '--keepalive', '30s', '--shutdown-timeout', '1m30s', '--response-timeout', '0', '--config', file, '--client-body-timeout', '500ms'],
    { MTLS_PROXY_EXPIRY_CHECK_INTERVAL: '1h' })
  t.equal(c.keepAliveMs, 30_000)
  t.equal(c.shutdownTimeoutMs, 90_000)
  t.equal(c.responseTimeoutMs, 0)
  t.equal(c.connectTimeoutMs, 2_000, 'from the config file')
  t.equal(c.probeIntervalMs, 1_500, 'a plain number is seconds')
  t.equal(c.clientBodyTimeoutMs, 500)
  t.equal(c.expiry.checkIntervalMs, 3_600_000, 'from the environment')
  for (const bad of ['30x', '5 m', 's', '1h-2m', '']) {
    t.throws(() => loadConfig([...base, '--keepalive', bad], {}, dir), { message: /--keepalive must be a duration such as 30s, 500ms, 5m or 1h, or a number of seconds/ }, `'${bad}' refused`)
  }
  t.throws(() => loadConfig(base, { MTLS_PROXY_KEEPALIVE: 'soon' }, dir), { message: /^MTLS_PROXY_KEEPALIVE must be a duration/ })
})

t.test('an unknown flag names the nearest known one; an unknown MTLS_PROXY_ variable is a warning', async (t) => {
  t.throws(() => loadConfig(['--prot', '80'], {}), { message: /^--prot is no setting of mtls-proxy; did you mean --port\? \(see --help\)$/ })
  t.throws(() => loadConfig(['--upstrem', 'x'], {}), { message: /did you mean --upstream\?/ })
  t.throws(() => loadConfig(['--frobnicate'], {}), { message: /^--frobnicate is no setting of mtls-proxy \(see --help\)$/ }, 'no guess when nothing is near')
  const command = loadConfig(required, { MTLS_PROXY_PROT: '80', MTLS_PROXY_KEEPALIVE: '5s' }, dir)
  t.match(command, { action: 'run', warnings: ['MTLS_PROXY_PROT is no setting of mtls-proxy; did you mean MTLS_PROXY_PORT? (ignored)'] })
})

t.test('a YAML mistake is one clean line; a bad path from a config file is named by its key and file', async (t) => {
  const yamlDir = await tempDir(t, 'yaml')
  const broken = join(yamlDir, 'broken.yaml')
  await writeFile(broken, 'upstream: https://h:1\n  port: 8001\n')
  const err = (() => { try { loadConfig(['--config', broken], {}, yamlDir) } catch (e) { return (e as Error).message } return '' })()
  t.match(err, /^config file .*broken\.yaml is not valid YAML or JSON: .* at line \d+, column \d+$/, 'ends at the position, no dangling colon')
  const withPaths = join(yamlDir, 'paths.yaml')
  await writeFile(withPaths, 'upstream: https://h:1\ncacert: missing-ca.crt\ncert: client.crt\nkey: client.key\n')
  // Only the CA is missing: the three are read at once, and the first to fail is the one reported.
  const { createDemoPki, writeClientFiles } = await import('../../../src/demo/pki.js')
  await writeClientFiles(await createDemoPki(), yamlDir)
  const { sourceOf } = await import('../../../src/credentials/source.js')
  const command = loadConfig(['--config', withPaths], {}, yamlDir)
  if (command.action !== 'run') throw new Error('expected run')
  await t.rejects(sourceOf(command.config.credentials).load(new Date()), { message: new RegExp(`^'cacert' \\(config file ${withPaths.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\) .*missing-ca\\.crt: cannot read: no such file`) })
  const fromEnv = loadConfig(['--upstream', 'https://h:1', '--cert', 'client.crt', '--key', 'client.key'], { MTLS_PROXY_CACERT: join(yamlDir, 'nope.crt') }, yamlDir)
  if (fromEnv.action !== 'run') throw new Error('expected run')
  await t.rejects(sourceOf(fromEnv.config.credentials).load(new Date()), { message: /^MTLS_PROXY_CACERT .*nope\.crt: cannot read/ })
})

t.test('durations stay within what a timer can hold: at least 1ms, at most 24.8 days; the message names where it was given', async (t) => {
  t.throws(() => loadConfig([...required, '--connect-timeout', '600h'], {}, dir), { message: /^--connect-timeout must be at most 24 days \(2147483647 ms\), got 2160000 s$/ })
  t.throws(() => loadConfig([...required, '--probe-interval', '100us'], {}, dir), { message: /^--probe-interval must be at least 1ms, got 0\.0001 s$/ })
  t.throws(() => loadConfig([...required, '--keepalive', '400us'], {}, dir), { message: /^--keepalive must be at least 1ms \(or 0\)/ })
  t.throws(() => loadConfig(required, { MTLS_PROXY_EXPIRY_CHECK_INTERVAL: '720h' }, dir), { message: /^MTLS_PROXY_EXPIRY_CHECK_INTERVAL must be at most 24 days/ })
  t.equal(run([...required, '--expiry-check-interval', '24h']).expiry.checkIntervalMs, 86_400_000)
})

t.test('suggestions: a prefix (--token for --token-file), a --no- form, and a misspelt variable named with the error it causes', async (t) => {
  t.throws(() => loadConfig(['--token', 'x'], {}), { message: /did you mean --token-file\?/ })
  t.throws(() => loadConfig(['--no-acess-log'], {}), { message: /did you mean --no-access-log\?/ })
  t.throws(() => loadConfig(['--cacert', 'a', '--cert', 'b', '--key', 'c'], { MTLS_PROXY_UPSTREM: 'https://h:1' }, dir),
    { message: /^missing --upstream .* \(also: MTLS_PROXY_UPSTREM is no setting of mtls-proxy; did you mean MTLS_PROXY_UPSTREAM\? \(ignored\)\)$/ })
})

t.test('the API server\'s token: a file beats text; in a config file\'s clusters: too; --token-file is another thing', async (t) => {
  const tokenOnly = ['--upstream', 'https://10.0.0.1:5443', '--cacert', 'ca.crt']
  t.same(run([...tokenOnly, '--upstream-token-file', 'api.token']).credentials.token,
    { kind: 'file', path: join(dir, 'api.token'), label: '--upstream-token-file' })
  t.same(run(tokenOnly, { MTLS_PROXY_UPSTREAM_TOKEN_DATA: ' from-env \n' }).credentials.token,
    { kind: 'inline', token: 'from-env', label: 'MTLS_PROXY_UPSTREAM_TOKEN_DATA' }, 'trimmed')
  t.match(run([...tokenOnly, '--upstream-token-file', 'api.token'], { MTLS_PROXY_UPSTREAM_TOKEN_DATA: 'x' }).credentials.token, { kind: 'file' })
  t.equal(run(required).credentials.token, undefined, 'none given: none')
  const yaml = join(dir, 'clusters-with-token.yaml')
  await writeFile(yaml, 'clusters:\n  - name: b\n    upstream: https://10.0.0.2:6443\n    cacert: ca.crt\n    upstream-token-file: b.token\n')
  const c = run([...required, '--config', yaml])
  t.match(c.clusters[0]!.credentials.token, { kind: 'file', path: join(dir, 'b.token') }, 'relative to the config file')
  t.throws(() => run([...tokenOnly, '--token-file', 'callers.token']), /--token-file is the token callers must send to mtls-proxy/)
})
