// One mistake reads the same from a flag, an MTLS_PROXY_* variable or the config file: the same bad
// value through each source gives the same message, apart from where it was given.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig } from '../../../src/settings/load.js'
import { envName } from '../../../src/settings/options.js'

const dir = await mkdtemp(join(tmpdir(), 'mtls-proxy-mistakes-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const file = join(dir, 'proxy.yaml')

const required: Record<string, string> = { upstream: 'https://10.0.0.1:5443', cacert: 'ca.crt', cert: 'client.crt', key: 'client.key' }

type Source = 'flag' | 'variable' | 'file'
const everySource: Source[] = ['flag', 'variable', 'file']
/** How each source spells a setting's name in a message. */
const spelt: Record<Source, (name: string) => string> = {
  flag: (name) => `--${name}`,
  variable: envName,
  file: (name) => `'${name}' (config file ${file})`,
}

/** What loadConfig says when `name` is given `value` through `source`, the required settings (but that one) as flags. */
async function said (source: Source, name: string, value: string): Promise<string> {
  const argv = Object.entries(required).filter(([n]) => n !== name).flatMap(([n, v]) => [`--${n}`, v])
  const env: NodeJS.ProcessEnv = {}
  if (source === 'flag') argv.push(`--${name}=${value}`)
  if (source === 'variable') env[envName(name)] = value
  if (source === 'file') {
    // As a user writes it: a plain word or number bare (YAML reads `70000` as a number), anything else quoted.
    await writeFile(file, `${name}: ${/^[\w.-]+$/.test(value) ? value : JSON.stringify(value)}\n`)
    argv.push('--config', file)
  }
  try {
    const command = loadConfig(argv, env, dir)
    return command.action === 'run' ? command.warnings.join('; ') : ''
  } catch (err) {
    return (err as Error).message
  }
}

// WHERE is where the value was given, as that source spells it.
const mistakes: Array<{ name: string; value: string; says: string; sources?: Source[] }> = [
  { name: 'port', value: 'abc', says: "WHERE must be a number, got 'abc'" },
  { name: 'port', value: 'Infinity', says: "WHERE must be a number, got 'Infinity'" },
  { name: 'port', value: '70000', says: "WHERE must be a whole number from 0 to 65535, got '70000'" },
  { name: 'port', value: '1.5', says: "WHERE must be a whole number from 0 to 65535, got '1.5'" },
  { name: 'max-connections', value: '0', says: "WHERE must be a whole number above zero, got '0'" },
  { name: 'expiry-warning-days', value: 'soon', says: "WHERE must be a number, got 'soon'" },
  // A switch takes true or false after = too, as kubectl's do (`--access-log=false`).
  { name: 'access-log', value: 'maybe', says: "WHERE must be true or false, got 'maybe'" },
  { name: 'log-level', value: 'loud', says: "WHERE must be one of fatal, error, warn, info, debug, trace, silent, got 'loud'" },
  { name: 'workers', value: 'many', says: "WHERE must be auto or a whole number from 1 to 64, got 'many'" },
  { name: 'keepalive', value: 'soon', says: "WHERE must be a duration such as 30s, 500ms, 5m or 1h, or a number of seconds, got 'soon'" },
  { name: 'keepalive', value: '-1', says: 'WHERE must be zero or more, got -1 s' },
  { name: 'connect-timeout', value: '600h', says: 'WHERE must be at most 24 days (2147483647 ms), got 2160000 s' },
  { name: 'connect-timeout', value: '0', says: 'WHERE must be more than zero, got 0 s' },
  { name: 'address', value: 'example.com', says: "WHERE must be an IP address or localhost, got 'example.com'" },
  { name: 'status-address', value: 'localhost', says: "WHERE must be HOST:PORT with an IP address, e.g. 0.0.0.0:9090 or [::]:9090, got 'localhost'" },
  { name: 'probe-path', value: 'version', says: "WHERE must start with /, got 'version'" },
  { name: 'allow-origin', value: 'nope', says: "WHERE 'nope' is not an origin; expected e.g. http://localhost:3000" },
  { name: 'reject-paths', value: '(', says: "WHERE: '(' is not a valid regular expression (Invalid regular expression: /(/i: Unterminated group)" },
  { name: 'upstream', value: 'http://10.0.0.1:6443', says: "WHERE must be an https:// URL (mutual TLS), got 'http://10.0.0.1:6443'" },
  { name: 'context', value: 'prod', says: 'WHERE picks from a kubeconfig, and none is read when --upstream or --cert is given; add --kubeconfig FILE' },
]

t.test('the same bad value says the same through each source, naming where it was given', async (t) => {
  for (const { name, value, says, sources = everySource } of mistakes) {
    for (const source of sources) {
      t.equal(await said(source, name, value), says.replace('WHERE', spelt[source](name)), `${source}: ${name} ${value}`)
    }
  }
})

t.test('a name that is no setting, with the nearest that is, as each source spells it', async (t) => {
  const core = (source: Source) => `${spelt[source]('prot')} is no setting of mtls-proxy; did you mean ${source === 'file' ? "'port'" : spelt[source]('port')}?`
  t.equal(await said('flag', 'prot', '80'), `${core('flag')} (see --help)`)
  t.equal(await said('file', 'prot', '80'), `${core('file')} (see --help)`)
  // The environment holds more than our settings: an unknown variable is a warning, and ignored.
  t.equal(await said('variable', 'prot', '80'), `${core('variable')} (ignored)`)
})

t.test('a switch\'s --no- form given a value says how a switch is given', async (t) => {
  t.equal(await said('flag', 'no-access-log', 'x'), "--no-access-log must be given without a value (--access-log or --no-access-log), got 'x'")
})

t.test('a secret value is never repeated in a message, and a YAML list or mapping is named, not dumped', async (t) => {
  const key = '-----BEGIN PRIVATE KEY-----'
  await writeFile(file, `key-data: [${JSON.stringify(key)}, "MC4CAQAwBQYDK2VwBCIEI"]\n`)
  const message = (() => { try { loadConfig(['--upstream', required.upstream!, '--config', file], {}, dir) } catch (err) { return (err as Error).message } return '' })()
  t.equal(message, `${spelt.file('key-data')} must be a string, got a list`)
  await writeFile(file, 'key-data: 12345\n')
  const number = (() => { try { loadConfig(['--upstream', required.upstream!, '--config', file], {}, dir) } catch (err) { return (err as Error).message } return '' })()
  t.equal(number, `${spelt.file('key-data')} must be a string, got a number`)
})
