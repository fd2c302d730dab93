// The settings as read → the Config they mean, or a UsageError that says which setting and why.
import { isIP } from 'node:net'
import { UsageError } from '../util/errors.js'
import { isLoopback, unbracketed } from '../util/addresses.js'
import { clusterNameProblem } from '../admission/target.js'
import { credentialSpec } from './credential-spec.js'
import { milliseconds, str, text } from './raw.js'
import type { OptionName } from './options.js'
import { LOG_LEVELS, type Config, type Environment, type GivenAt, type LogLevel, type RawSettings, type Settings } from './types.js'

export function validate (raw: RawSettings, givenAt: GivenAt, environment: Environment, clusterEntries: Settings['clusters']): Config {
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
