// The settings as read → the Config they mean, or a UsageError that says which setting and why.
import { UsageError } from '../util/errors.js'
import type { CredentialSpec } from '../credentials/source.js'
import { clusterSpecs, credentialSpec } from './credential-spec.js'
import { listening, statusAddress } from './listening.js'
import { milliseconds, str, text } from './raw.js'
import type { OptionName } from './options.js'
import { LOG_LEVELS, type Config, type Environment, type GivenAt, type LogLevel, type RawSettings, type Settings, type Where } from './types.js'

// The checks run in this order, so that of several mistakes the same one is named first.
export function validate (raw: RawSettings, givenAt: GivenAt, environment: Environment, clusterEntries: Settings['clusters']): Config {
  const where: Where = (name) => givenAt[name] ?? `--${name}`
  const credentials = credentialSpec(raw, where, environment)
  const allContexts = allContextsOf(raw, where, credentials)
  const clusters = clusterSpecs(clusterEntries, raw, environment)
  const listener = listening(raw)
  const logLevel = logLevelOf(raw)
  const probePath = probePathOf(raw)
  const ms = (name: OptionName, allowZero: boolean) => milliseconds(raw, name, { allowZero }, where(name))
  const tokenFile = str(raw, 'token-file')
  return {
    credentials,
    callerToken: tokenFile === undefined ? undefined : { path: tokenFile, label: where('token-file') },
    allContexts,
    clusters,
    expiry: { ...expiryDays(raw), checkIntervalMs: ms('expiry-check-interval', false) },
    ...listener,
    statusAddress: statusAddress(str(raw, 'status-address')),
    https: credentials.listener !== undefined,
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

function allContextsOf (raw: RawSettings, where: Where, credentials: CredentialSpec): boolean {
  const allContexts = raw['all-contexts'] === true
  if (allContexts && !credentials.kubeconfig) {
    throw new UsageError(`${where('all-contexts')} serves every context of a kubeconfig, and none is read when --upstream or --cert is given; add --kubeconfig FILE, or list the clusters in a config file's clusters:`)
  }
  return allContexts
}

function logLevelOf (raw: RawSettings): LogLevel {
  const logLevel = text(raw, 'log-level') as LogLevel
  if (!LOG_LEVELS.includes(logLevel)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got '${logLevel}'`)
  return logLevel
}

function probePathOf (raw: RawSettings): string {
  const probePath = text(raw, 'probe-path')
  if (!probePath.startsWith('/')) throw new UsageError(`--probe-path must start with /, got '${probePath}'`)
  return probePath
}

function expiryDays (raw: RawSettings): { warningDays: number; criticalDays: number } {
  const warningDays = raw['expiry-warning-days'] as number
  const criticalDays = raw['expiry-critical-days'] as number
  if (!(criticalDays >= 0 && warningDays >= criticalDays)) {
    throw new UsageError(`--expiry-warning-days (${warningDays}) must be at least --expiry-critical-days (${criticalDays}), both zero or more`)
  }
  return { warningDays, criticalDays }
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
