// One place decides what the settings mean: flags beat environment variables, which beat the
// config file, which beats the defaults. Everything else receives the validated Config.
import { isIP } from 'node:net'
import { dirname, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { formatDuration, parseDuration } from './durations.js'
import { firstLine, UsageError } from '../util/errors.js'
import { nearest } from './suggest.js'
import * as lazy from '../util/lazy.js'
import { describeFsError } from '../util/fs-errors.js'
import { readRegularFileSync } from '../util/files.js'
import { isLoopback, unbracketed } from '../util/addresses.js'
import { defaultKubeconfigFiles } from '../credentials/kubeconfig.js'
import { proxyEnvironment, type ProxyEnvironment } from '../upstream/connect-proxy.js'
import { checkComplete, upstreamUrl, type CredentialSpec, type PemSource } from '../credentials/source.js'
import type { CallerTokenSource } from '../admission/caller-token.js'
import { clusterNameProblem } from '../admission/target.js'
import { OPTIONS, envName, missingSetting, type OptionName, type OptionSpec } from './options.js'

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

/** What the settings mean, as plain data: built from flags, environment and config file, reading nothing else. */
export interface Config {
  /** where the API server and the credentials come from; the credential store reads them */
  credentials: CredentialSpec
  /** the token callers must present (--token-file); undefined: none */
  callerToken: CallerTokenSource | undefined
  /** --all-contexts: every other context of the kubeconfig is served too, under /clusters/NAME/ */
  allContexts: boolean
  /** a config file's `clusters:`, each served under /clusters/NAME/ */
  clusters: Array<{ name: string; credentials: CredentialSpec }>
  expiry: { warningDays: number; criticalDays: number; checkIntervalMs: number }
  /** bare, without IPv6 brackets */
  address: string
  port: number
  /** listen here instead of address:port */
  unixSocket: string | undefined
  /** a second listener for the /-/ endpoints only */
  statusAddress: { host: string; port: number } | undefined
  /** the listener serves HTTPS (--listen-cert, --listen-key) */
  https: boolean
  maxConnections: number
  /** processes serving the listener; 1: this one alone; auto: one per core (process/workers.ts counts them) */
  workers: number | 'auto'
  allowNonLoopback: boolean
  /** exact origins whose browser requests are accepted; empty: none */
  allowOrigins: string[]
  acceptHosts: RegExp[]
  acceptPaths: RegExp[]
  rejectPaths: RegExp[]
  rejectMethods: RegExp[]
  logLevel: LogLevel
  /** where log lines go: stdout, or stderr when a command runs with the proxy and stdout is its */
  logTo: 'stdout' | 'stderr'
  accessLog: boolean
  connectTimeoutMs: number
  /** 0: no limit */
  responseTimeoutMs: number
  /** time from connecting to a whole first request head */
  clientHeaderTimeoutMs: number
  /** longest pause between reads of a request body; 0: no limit */
  clientBodyTimeoutMs: number
  shutdownTimeoutMs: number
  /** 0: off */
  keepAliveMs: number
  probePath: string
  probeIntervalMs: number
}

export type CommandLine =
  | { action: 'help' }
  | { action: 'version' }
  /** exec: `-- COMMAND ARGS…`, run with the proxy, which stops after it */
  | { action: 'run'; config: Config; warnings: string[]; settings: Settings; exec?: string[] }
  /** `mtls-proxy kubeconfig`: print a kubeconfig for a proxy at this address */
  | { action: 'kubeconfig'; address: string; port: number }

type RawSettings = Partial<Record<OptionName, string | number | boolean>>
/** Where each setting was given, for messages: `--cacert`, `MTLS_PROXY_CACERT`, or `'cacert' in config file F`. */
type GivenAt = Partial<Record<OptionName, string>>

/**
 * The settings as read, before validation: plain data (JSON), paths resolved. What --workers hands
 * each worker, so that all of them, replacements included, serve what the primary read at start
 * even if the config file changes later.
 */
export interface Settings {
  raw: RawSettings
  givenAt: GivenAt
  /** a config file's `clusters:`, each entry's name and settings as read (paths resolved), with where it was given */
  clusters: Array<{ name: string; raw: RawSettings; where: string }>
  /** what the environment said besides MTLS_PROXY_*, read once: every worker uses the same */
  environment: Environment
}

/** What kubectl would take from the environment: the kubeconfig files, and the proxy to the API server. */
export interface Environment {
  kubeconfig: { files: string[]; from: string }
  proxy: ProxyEnvironment
}

/** The Config of settings read earlier (by another process); throws UsageError as loadConfig does. */
export function configFromSettings (settings: Settings): Config {
  return validate(settings.raw, settings.givenAt, settings.environment, settings.clusters)
}

const SPECS: ReadonlyMap<string, OptionSpec> = new Map(OPTIONS.map((o) => [o.name, o]))

function readFlags (argv: string[]): { raw: RawSettings; help: boolean; version: boolean } {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean' },
  }
  for (const o of OPTIONS as readonly OptionSpec[]) if (!o.noFlag) options[o.name] = { type: o.type === 'boolean' ? 'boolean' : 'string' }
  let parsed
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: false, allowNegative: true })
  } catch (err) {
    const message = (err as Error).message.split('\n')[0]!
    const unknown = /^Unknown option '--([^'=]+)'/.exec(message)?.[1]
    // Booleans have a --no- form too.
    const names = Object.entries(options).flatMap(([name, o]) => (o.type === 'boolean' ? [name, `no-${name}`] : [name]))
    const near = unknown === undefined ? undefined : nearest(unknown, names)
    throw new UsageError(`${message}${near ? `; did you mean --${near}?` : ''} (see --help)`)
  }
  const { help, version, ...rest } = parsed.values as Record<string, string | boolean | undefined>
  const raw: RawSettings = {}
  for (const [name, value] of Object.entries(rest)) {
    if (value !== undefined) raw[name as OptionName] = coerce(name, value, `--${name}`)
  }
  return { raw, help: help === true, version: version === true }
}

function coerce (name: string, value: unknown, where: string): string | number | boolean {
  const spec = SPECS.get(name)
  if (!spec) throw new UsageError(`${where}: unknown setting '${name}'`)
  if (spec.type === 'number') {
    const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN
    if (!Number.isFinite(n)) throw new UsageError(`${where} must be a number, got '${String(value)}'`)
    return n
  }
  if (spec.type === 'duration') {
    const seconds = typeof value === 'number' ? value : typeof value === 'string' ? parseDuration(value) : undefined
    if (seconds === undefined || !Number.isFinite(seconds)) {
      throw new UsageError(`${where} must be a duration such as 30s, 500ms, 5m or 1h, or a number of seconds, got '${String(value)}'`)
    }
    return seconds
  }
  // YAML reads `workers: 4` as a number; the setting also takes `auto`.
  if (name === 'workers' && typeof value === 'number') return String(value)
  // eslint-disable-next-line valid-typeof -- spec.type is string or boolean here: a typeof name
  if (typeof value !== spec.type) throw new UsageError(`${where} must be a ${spec.type}, got '${String(value)}'`)
  return value as string | boolean
}

function readEnv (env: NodeJS.ProcessEnv): RawSettings {
  if (!OPTIONS.some((o) => env[envName(o.name)] !== undefined)) return {}
  const properties: Record<string, { type: string }> = {}
  // Durations arrive as text (`30s`) and are read below, as flags are.
  for (const o of OPTIONS) properties[envName(o.name)] = { type: o.type === 'duration' ? 'string' : o.type }
  let values: Record<string, unknown>
  try {
    values = lazy.envSchema()({ schema: { type: 'object', properties }, data: { ...env }, env: false, dotenv: false })
  } catch (err) {
    const first = (err as { errors?: Array<{ instancePath: string; message?: string }> }).errors?.[0]
    const variable = first?.instancePath.replace(/^\//, '') ?? ''
    throw new UsageError(`environment variable ${variable} ${first?.message ?? (err as Error).message}, got '${env[variable] ?? ''}'`)
  }
  const raw: RawSettings = {}
  for (const o of OPTIONS) {
    const value = values[envName(o.name)]
    if (value !== undefined && value !== '') {
      raw[o.name] = o.type === 'duration'
        ? coerce(o.name, value, 'environment variable ' +
      `${envName(o.name)}`)
        : value as string | number | boolean
    }
  }
  return raw
}

/** MTLS_PROXY_* variables that name no setting: a typo would otherwise be silently ignored. */
function unknownVariables (env: NodeJS.ProcessEnv): string[] {
  const known = OPTIONS.map((o) => envName(o.name))
  return Object.keys(env).filter((name) => name.startsWith('MTLS_PROXY_') && !known.includes(name)).map((name) => {
    const near = nearest(name, known)
    return `environment variable ${name} is no setting of mtls-proxy and is ignored${near ? `; did you mean ${near}?` : ''}`
  })
}

// Settings, not data: far more than any config file needs.
const MAX_CONFIG_FILE_BYTES = 1024 * 1024

// What a config file's `clusters:` entry may say: where one cluster is and how to reach it.
const CLUSTER_KEYS = new Set(['upstream', 'cacert', 'cert', 'key', 'cacert-data', 'cert-data', 'key-data', 'key-passphrase-file',
  'insecure-skip-tls-verify', 'tls-server-name', 'kubeconfig', 'context', 'cluster', 'user'])

/** One setting from a config file, coerced, a path made relative to the file. */
function fileValue (file: string, name: string, value: unknown, label: string): string | number | boolean {
  const v = coerce(name, value, label)
  return SPECS.get(name)?.path && typeof v === 'string' ? resolve(dirname(file), v) : v
}

function readClusters (file: string, list: unknown): Settings['clusters'] {
  if (!Array.isArray(list)) throw new UsageError(`config file ${file}: 'clusters' must be a list of mappings, each with a name`)
  return list.map((entry: unknown, i) => {
    const where = `clusters[${i}] (config file ${file})`
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new UsageError(`${where} must be a mapping`)
    const raw: RawSettings = {}
    for (const [name, value] of Object.entries(entry)) {
      if (name === 'name') continue
      if (!CLUSTER_KEYS.has(name)) {
        throw new UsageError(`${where}: '${name}' cannot be set for one cluster (it may say name, ${[...CLUSTER_KEYS].join(', ')})`)
      }
      if (value !== null && value !== undefined) raw[name as OptionName] = fileValue(file, name, value, `${where}: '${name}'`)
    }
    const name = (entry as Record<string, unknown>).name
    if (typeof name !== 'string' || name === '') throw new UsageError(`${where} needs a name: it is served under /clusters/NAME/`)
    return { name, raw, where }
  })
}

function readConfigFile (file: string): { raw: RawSettings; clusters: Settings['clusters'] } {
  let text: string
  try {
    text = readRegularFileSync(file, MAX_CONFIG_FILE_BYTES).text
  } catch (err) {
    throw new UsageError(`cannot read config file ${file}: ${describeFsError(err)}`)
  }
  let doc: unknown
  try {
    // Warnings off: yaml prints them to stderr, past the log and its redaction, quoting the line.
    doc = lazy.yaml().parse(text, { logLevel: 'error' }) ?? {}
  } catch (err) {
    throw new UsageError(`config file ${file} is not valid YAML or JSON: ${firstLine(err)}`)
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new UsageError(`config file ${file} must hold a mapping of settings, like 'upstream: https://…'`)
  }
  const raw: RawSettings = {}
  let clusters: Settings['clusters'] = []
  for (const [name, value] of Object.entries(doc)) {
    if (name === 'config') throw new UsageError(`config file ${file}: 'config' cannot be set inside a config file`)
    if (name === 'clusters') {
      if (value !== null && value !== undefined) clusters = readClusters(file, value)
      continue
    }
    if (!SPECS.has(name)) throw new UsageError(`config file ${file}: unknown setting '${name}' (the keys are the flag names, see --help)`)
    if (value === null || value === undefined) continue
    // A path in the file means a path next to the file, wherever the proxy was started from.
    raw[name as OptionName] = fileValue(file, name, value, `config file ${file}: '${name}'`)
  }
  return { raw, clusters }
}

function str (raw: RawSettings, name: OptionName): string | undefined {
  const v = raw[name]
  return typeof v === 'string' && v !== '' ? v : undefined
}

/** A setting the table gives a default: as given, or (given empty) its default. */
function text (raw: RawSettings, name: OptionName): string {
  return str(raw, name) ?? String(SPECS.get(name)?.default ?? '')
}

// Node's timers hold at most 2^31-1 ms (24.8 days); a longer one would fire at once.
const MAX_TIMER_MS = 2 ** 31 - 1

/** A duration setting in milliseconds, as timers take it: a whole millisecond at least, 24.8 days at most. */
function milliseconds (raw: RawSettings, name: OptionName, { allowZero }: { allowZero: boolean }, label: string): number {
  const v = raw[name] as number
  const ms = Math.round(v * 1000)
  const got = `got ${Number(v.toPrecision(6))} s`
  if (v < 0 || (!allowZero && v === 0)) throw new UsageError(`${label} must be ${allowZero ? 'zero or more' : 'more than zero'}, ${got}`)
  if (v > 0 && ms === 0) throw new UsageError(`${label} must be at least 1ms${allowZero ? ' (or 0)' : ''}, ${got}`)
  if (ms > MAX_TIMER_MS) throw new UsageError(`${label} must be at most 24 days (${MAX_TIMER_MS} ms), ${got}`)
  return ms
}

/** The settings that say where credentials come from; nothing is read here. */
function credentialSpec (raw: RawSettings, given: (name: OptionName) => string, environment: Environment): CredentialSpec {
  const file = (name: OptionName): { path: string; label: string } | undefined => {
    const path = str(raw, name)
    return path === undefined ? undefined : { path, label: given(name) }
  }
  const pem = (name: 'cacert' | 'cert' | 'key'): PemSource | undefined => {
    const named = file(name)
    if (named) return { kind: 'file', ...named }
    const data = str(raw, `${name}-data`)
    return data ? { kind: 'inline', pem: pemText(data), label: given(`${name}-data`) } : undefined
  }
  const upstream = str(raw, 'upstream')
  const kubeconfigFile = str(raw, 'kubeconfig')
  const picked = { context: str(raw, 'context'), cluster: str(raw, 'cluster'), user: str(raw, 'user') }
  // As kubectl: with neither a server nor a certificate nor a kubeconfig named, $KUBECONFIG or ~/.kube/config.
  const useDefault = kubeconfigFile === undefined && upstream === undefined && str(raw, 'cert') === undefined &&
    str(raw, 'cert-data') === undefined
  const kubeconfig = kubeconfigFile !== undefined
    ? { files: [kubeconfigFile], from: '--kubeconfig', ...picked }
    : useDefault ? { ...environment.kubeconfig, ...picked } : undefined
  const pickedName = (['context', 'cluster', 'user'] as const).find((n) => picked[n] !== undefined)
  if (pickedName && !kubeconfig) {
    throw new UsageError(`--${pickedName} picks from a kubeconfig, and none is read when --upstream or --cert is given; ` +
      'add --kubeconfig FILE')
  }
  if (upstream === undefined && kubeconfig === undefined) throw missingSetting('upstream')
  const listenCert = file('listen-cert')
  const listenKey = file('listen-key')
  if ((listenCert === undefined) !== (listenKey === undefined)) {
    throw new UsageError('--listen-cert and --listen-key go together: the certificate the listener serves HTTPS with, and its key')
  }
  const spec: CredentialSpec = {
    kubeconfig,
    server: upstream === undefined ? undefined : upstreamUrl(upstream, '--upstream'),
    tlsServerName: str(raw, 'tls-server-name'),
    insecureSkipTlsVerify: raw['insecure-skip-tls-verify'] === true,
    ca: pem('cacert'),
    cert: pem('cert'),
    key: pem('key'),
    passphraseFile: str(raw, 'key-passphrase-file'),
    listener: listenCert && listenKey ? { cert: { kind: 'file', ...listenCert }, key: { kind: 'file', ...listenKey } } : undefined,
    proxyEnv: environment.proxy,
  }
  // Without a kubeconfig, nothing can fill a gap later: say so now.
  checkComplete(spec)
  return spec
}

function validate (raw: RawSettings, givenAt: GivenAt, environment: Environment, clusterEntries: Settings['clusters']): Config {
  const given = (name: OptionName) => givenAt[name] ?? `--${name}`
  const credentials = credentialSpec(raw, given, environment)
  const allContexts = raw['all-contexts'] === true
  if (allContexts && !credentials.kubeconfig) {
    throw new UsageError(`${given('all-contexts')} serves every context of a kubeconfig, and none is read when --upstream or --cert is ` +
      'given; add --kubeconfig FILE, or list the clusters in a config file\'s clusters:')
  }
  const clusters = clusterEntries.map(({ name, raw: entry, where }) => {
    const settings = { ...entry }
    const problem = clusterNameProblem(name)
    if (problem) throw new UsageError(`${where}: '${name.slice(0, 100)}' cannot be a cluster's name: ${problem}`)
    if (settings.upstream === undefined && settings.kubeconfig === undefined && settings.context === undefined) {
      throw new UsageError(`${where} ('${name}') says nowhere to forward: give upstream (with cacert, cert and key), or a context ` +
        '(of its own kubeconfig, or of the top-level one)')
    }
    // A context without a kubeconfig of its own is one of the top-level kubeconfig's.
    if (settings.upstream === undefined && settings.kubeconfig === undefined && raw.kubeconfig !== undefined) {
      settings.kubeconfig = raw.kubeconfig
    }
    try {
      return { name, credentials: credentialSpec(settings, (n) => `${where} '${n}'`, environment) }
    } catch (err) {
      throw err instanceof UsageError ? new UsageError(`${where} ('${name}'): ${err.message}`) : err
    }
  })
  const names = new Set<string>()
  for (const { name } of clusters) {
    if (names.has(name)) throw new UsageError(`two clusters are named '${name}' in the config file's clusters:; each needs its own name`)
    names.add(name)
  }
  const address = unbracketed(text(raw, 'address'))
  if (address !== 'localhost' && isIP(address) === 0) {
    throw new UsageError(`--address must be an IP address or localhost, got '${text(raw, 'address')}'`)
  }
  const allowNonLoopback = raw['allow-non-loopback'] === true
  const unixSocket = str(raw, 'unix-socket')
  const tokenFile = str(raw, 'token-file')
  const callerToken = tokenFile !== undefined
  if (!unixSocket && !isLoopback(address) && (!allowNonLoopback || (!callerToken && raw['allow-unauthenticated'] !== true))) {
    // Everything it takes, in one message: not one missing setting per attempt.
    const missing = [
      ...(allowNonLoopback ? [] : ['--allow-non-loopback (you mean it)']),
      ...(callerToken || raw['allow-unauthenticated'] === true
        ? []
        : ['--token-file FILE (callers must present its token; with --listen-cert and --listen-key so kubectl will send it) ' +
          'or --allow-unauthenticated (anyone who reaches it acts as you)']),
    ]
    throw new UsageError(`--address ${address} is not a loopback address: anyone who can reach it would act with your client ` +
      'certificate; ' +
      `to listen there anyway, pass ${missing.join(', and ')}`)
  }
  const maxConnections = raw['max-connections'] as number
  if (!Number.isInteger(maxConnections) || maxConnections < 1) {
    throw new UsageError(`--max-connections must be a whole number above zero, got ${maxConnections}`)
  }
  const workers = workerCount(text(raw, 'workers'))
  if (workers !== 1 && unixSocket) {
    throw new UsageError(`--workers ${workers} cannot share --unix-socket: the socket is checked and watched by one process; ` +
      'use --workers 1 or a TCP --port')
  }
  const port = raw.port as number
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError('--port must be a whole number from 0 to 65535, got ' +
    `${port}`)
  }

  const logLevel = text(raw, 'log-level') as LogLevel
  if (!LOG_LEVELS.includes(logLevel)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got '${logLevel}'`)

  const probePath = text(raw, 'probe-path')
  if (!probePath.startsWith('/')) throw new UsageError(`--probe-path must start with /, got '${probePath}'`)

  const warningDays = raw['expiry-warning-days'] as number
  const criticalDays = raw['expiry-critical-days'] as number
  if (!(criticalDays >= 0 && warningDays >= criticalDays)) {
    throw new UsageError(`--expiry-warning-days (${warningDays}) must be at least --expiry-critical-days (${criticalDays}), both zero ` +
      'or more')
  }
  const ms = (name: OptionName, allowZero: boolean) => milliseconds(raw, name, { allowZero }, given(name))
  return {
    credentials,
    callerToken: tokenFile === undefined ? undefined : { path: tokenFile, label: given('token-file') },
    allContexts,
    clusters,
    expiry: { warningDays, criticalDays, checkIntervalMs: ms('expiry-check-interval', false) },
    address,
    port,
    unixSocket,
    statusAddress: hostPort(str(raw, 'status-address')),
    https: credentials.listener !== undefined,
    maxConnections,
    workers,
    allowNonLoopback,
    allowOrigins: origins(str(raw, 'allow-origin')),
    acceptHosts: regexps(raw, 'accept-hosts'),
    acceptPaths: regexps(raw, 'accept-paths'),
    rejectPaths: regexps(raw, 'reject-paths'),
    rejectMethods: regexps(raw, 'reject-methods'),
    logLevel,
    logTo: 'stdout',
    accessLog: raw['access-log'] !== false,
    connectTimeoutMs: ms('connect-timeout', false),
    responseTimeoutMs: ms('response-timeout', true),
    clientHeaderTimeoutMs: ms('client-header-timeout', false),
    clientBodyTimeoutMs: ms('client-body-timeout', true),
    shutdownTimeoutMs: ms('shutdown-timeout', true),
    keepAliveMs: ms('keepalive', true),
    probePath,
    probeIntervalMs: ms('probe-interval', false),
  }
}

// More processes than this only share out the same cores more thinly.
export const MAX_WORKERS = 64
/** Set by the --workers primary on each worker it starts (process/workers.ts); deleted once read. */
export const WORKER_ROLE_ENV = '_MTLS_PROXY_WORKER'

function workerCount (value: string): number | 'auto' {
  if (value === 'auto') return 'auto'
  const n = /^\d{1,3}$/.test(value) ? Number(value) : NaN
  if (!(n >= 1 && n <= MAX_WORKERS)) {
    throw new UsageError(`--workers must be auto or a whole number from 1 to ${MAX_WORKERS}, got '${value}'`)
  }
  return n
}

function hostPort (value: string | undefined): { host: string; port: number } | undefined {
  if (value === undefined) return undefined
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+|localhost)):(\d{1,5})$/.exec(value)
  const port = Number(m?.[3])
  if (!m || port > 65535) {
    throw new UsageError(`--status-address must be HOST:PORT with an IP address, e.g. 0.0.0.0:9090 or [::]:9090, got '${value}'`)
  }
  return { host: m[1] ?? m[2]!, port }
}

/** kubectl proxy's form: comma-separated regular expressions; matched case-insensitively so case cannot dodge a rule. */
function regexps (raw: RawSettings, name: OptionName): RegExp[] {
  const value = str(raw, name) ?? ''
  return value.split(',').map((p) => p.trim()).filter(Boolean).map((p) => {
    try {
      return new RegExp(p, 'i')
    } catch (err) {
      throw new UsageError(`--${name}: '${p}' is not a valid regular expression (${(err as Error).message})`)
    }
  })
}

function origins (value: string | undefined): string[] {
  if (!value) return []
  return value.split(',').map((o) => o.trim()).filter(Boolean).map((o) => {
    let url: URL
    try {
      url = new URL(o)
    } catch {
      throw new UsageError(`--allow-origin '${o}' is not an origin; expected e.g. http://localhost:3000`)
    }
    if (url.origin === 'null' || url.pathname !== '/' || url.search || o.endsWith('/')) {
      throw new UsageError(`--allow-origin '${o}' is not an origin: scheme, host and port only, e.g. http://localhost:3000`)
    }
    return url.origin
  })
}

/** PEM text as is; anything else is taken as base64 of PEM (how Secrets often arrive in env). */
function pemText (value: string): string {
  return value.includes('-----BEGIN') ? value : Buffer.from(value, 'base64').toString('utf8')
}

function defaults (): RawSettings {
  const raw: RawSettings = {}
  for (const o of OPTIONS as readonly OptionSpec[]) if (o.default !== undefined) raw[o.name as OptionName] = o.default
  return raw
}

/** Reads flags, environment and config file into one validated Config; a user mistake throws UsageError. */
export function loadConfig (argv: string[], env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): CommandLine {
  if (argv[0] === 'kubeconfig') return kubeconfigCommand(argv.slice(1))
  // `-- COMMAND ARGS…`: everything after the first `--` is the command's, untouched.
  const dash = argv.indexOf('--')
  const exec = dash < 0 ? undefined : argv.slice(dash + 1)
  const flags = readFlags(dash < 0 ? argv : argv.slice(0, dash))
  if (flags.help) return { action: 'help' }
  if (flags.version) return { action: 'version' }
  if (exec?.length === 0) throw new UsageError('nothing to run after --; e.g. mtls-proxy --kubeconfig cce.yaml -- kubectl get pods')
  // Said with the error too: a misspelt variable is often why a setting is missing.
  const warnings = unknownVariables(env)
  try {
    const settings = readSettings(flags.raw, env, cwd)
    if (!exec) return { action: 'run', config: configFromSettings(settings), warnings, settings }
    return { action: 'run', config: runModeConfig(settings), warnings, settings, exec }
  } catch (err) {
    throw alsoSaying(err, warnings)
  }
}

/**
 * With a command to run, the proxy is its private helper: TCP on loopback (a free port unless
 * --port says), one process, its log on stderr at warn unless --log-level says, so the command's
 * output stays its own.
 */
function runModeConfig (settings: Settings): Config {
  // Only a flag says otherwise: a port or level in the environment or a config file is the resident proxy's.
  const given = (name: OptionName) => settings.givenAt[name] === `--${name}`
  const raw: RawSettings = {
    ...settings.raw,
    ...(given('port') ? {} : { port: 0 }),
    ...(given('log-level') ? {} : { 'log-level': 'warn' }),
  }
  const config = validate(raw, settings.givenAt, settings.environment, settings.clusters)
  const refused = (what: string) =>
    new UsageError(`${what} cannot be used with -- COMMAND: the command gets the proxy on a loopback TCP port`)
  if (config.unixSocket) throw refused('--unix-socket')
  if (config.https) throw refused('--listen-cert (the command gets HTTPS with a certificate made for it)')
  if (config.callerToken) throw refused('--token-file (the command gets a token made for it)')
  if (!isLoopback(config.address)) throw refused(`--address ${config.address}`)
  if (config.workers !== 1) throw refused('--workers')
  return { ...config, logTo: 'stderr' }
}

/** `mtls-proxy kubeconfig [--address A] [--port P]` */
function kubeconfigCommand (argv: string[]): CommandLine {
  let values
  try {
    values = parseArgs({ args: argv, options: { address: { type: 'string' }, port: { type: 'string' } }, strict: true }).values
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split('\n')[0]!} (usage: mtls-proxy kubeconfig [--address IP] [--port PORT])`)
  }
  const address = unbracketed(values.address ?? String(SPECS.get('address')!.default))
  if (address !== 'localhost' && isIP(address) === 0) throw new UsageError(`--address must be an IP address or localhost, got '${address}'`)
  const port = Number(values.port ?? SPECS.get('port')!.default)
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(`--port must be a whole number from 1 to 65535, got '${values.port}'`)
  }
  return { action: 'kubeconfig', address, port }
}

/** A user mistake, with the warnings that may explain it (a misspelt variable is often why a setting is missing). */
export function alsoSaying (err: unknown, warnings: readonly string[]): unknown {
  return err instanceof UsageError && warnings.length > 0 ? new UsageError(`${err.message} (also: ${warnings.join('; ')})`) : err
}

/** Paths given as flags or variables mean paths from where the proxy was started. */
function resolvePaths (raw: RawSettings, base: string): RawSettings {
  const out: RawSettings = { ...raw }
  for (const [name, value] of Object.entries(raw) as Array<[OptionName, unknown]>) {
    if (SPECS.get(name)?.path && typeof value === 'string' && value !== '') out[name] = resolve(base, value)
  }
  return out
}

function readSettings (flags: RawSettings, env: NodeJS.ProcessEnv, cwd: string): Settings {
  const flagged = resolvePaths(flags, cwd)
  const fromEnv = resolvePaths(readEnv(env), cwd)
  const configFile = str(flagged, 'config') ?? str(fromEnv, 'config')
  const read = configFile ? readConfigFile(resolve(cwd, configFile)) : { raw: {}, clusters: [] }
  const fromFile = read.raw
  const raw = { ...defaults(), ...fromFile, ...fromEnv, ...flagged }
  const givenAt: GivenAt = {}
  for (const name of Object.keys(fromFile) as OptionName[]) givenAt[name] = `'${name}' (config file ${resolve(cwd, configFile!)})`
  for (const name of Object.keys(fromEnv) as OptionName[]) givenAt[name] = envName(name)
  for (const name of Object.keys(flagged) as OptionName[]) givenAt[name] = `--${name}`
  const environment = { kubeconfig: defaultKubeconfigFiles(env, cwd), proxy: proxyEnvironment(env) }
  return { raw, givenAt, environment, clusters: read.clusters }
}

export function helpText (version: string): string {
  const column = 28
  const indent = ' '.repeat(column + 3)
  const rows = (OPTIONS as readonly OptionSpec[]).map((o) => {
    // Secrets have no flag (every local user sees argv in ps): their first column is the variable.
    const flag = o.noFlag ? envName(o.name) : o.type === 'boolean' ? `--${o.name}` : `--${o.name} ${o.value ?? 'VALUE'}`
    const shown = o.type === 'duration' ? formatDuration(o.default as number) : String(o.default)
    const dflt = o.default !== undefined && o.default !== '' && o.type !== 'boolean' ? ` (default ${shown})` : ''
    const where = o.noFlag ? `no flag: the environment, or '${o.name}:' in a config file` : `env ${envName(o.name)}`
    const head = flag.length < column ? `  ${flag.padEnd(column)} ` : `  ${flag}\n${indent}`
    return `${head}${o.help}${dflt}\n${indent}${where}`
  })
  return [
    `mtls-proxy ${version}: plain HTTP on localhost, forwarded to an API server over mutual TLS`,
    '',
    'Usage: mtls-proxy --upstream https://HOST:PORT --cacert ca.crt --cert client.crt --key client.key [options]',
    '       mtls-proxy [--kubeconfig FILE] [--context NAME] [options]   (default: $KUBECONFIG or ~/.kube/config, as kubectl;',
    '                  its user may hold a client certificate, a token, a tokenFile or an exec plugin)',
    '       mtls-proxy --all-contexts [options]   every context of the kubeconfig under /clusters/CONTEXT/, the current one',
    '                  also at /; a --config file may list more clusters under clusters: (name, upstream, cacert, cert, key…)',
    '       mtls-proxy [options] -- COMMAND [ARGS...]   run COMMAND with a proxy for it alone, on a free loopback port, HTTPS',
    '                  with a token made for the run (MTLS_PROXY_URL, MTLS_PROXY_TOKEN, MTLS_PROXY_CACERT, KUBECONFIG);',
    '                  exits with its status',
    '       mtls-proxy kubeconfig [--address IP] [--port PORT]   print a kubeconfig for a proxy there',
    '',
    'Options (flags beat environment variables, which beat the --config file):',
    ...rows,
    `  ${'-h, --help'.padEnd(column)} show this help`,
    `  ${'--version'.padEnd(column)} print the version, and the Node.js and platform it runs on`,
    '',
    'Then: curl http://127.0.0.1:8001/api/v1/namespaces/default/pods',
    '      kubectl --server http://127.0.0.1:8001 get pods',
    '',
  ].join('\n')
}
