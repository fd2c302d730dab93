// The settings as read → the Config they mean, or a UsageError that says which setting and why.
import { UsageError } from '../util/errors.js'
import { mustBe } from './mistakes.js'
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
  const listener = listening(raw, where)
  const logLevel = logLevelOf(raw, where)
  const probePath = probePathOf(raw, where)
  const ms = (name: OptionName, allowZero: boolean) => milliseconds(raw, name, { allowZero }, where(name))
  const tokenFile = str(raw, 'token-file')
  return {
    credentials,
    callerToken: tokenFile === undefined ? undefined : { path: tokenFile, label: where('token-file') },
    allContexts,
    clusters,
    expiry: { ...expiryDays(raw, where), checkIntervalMs: ms('expiry-check-interval', false) },
    ...listener,
    statusAddress: statusAddress(raw, where),
    https: credentials.listener !== undefined,
    allowOrigins: origins(raw, where),
    acceptHosts: regexps(raw, 'accept-hosts', where),
    acceptPaths: regexps(raw, 'accept-paths', where),
    rejectPaths: regexps(raw, 'reject-paths', where),
    rejectMethods: regexps(raw, 'reject-methods', where),
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

/** --all-contexts, which needs a kubeconfig to serve the contexts of (`mtls-proxy kubeconfig` asks too). */
export function allContextsOf (raw: RawSettings, where: Where, credentials: Pick<CredentialSpec, 'kubeconfig'> & Partial<Pick<CredentialSpec, 'serviceAccount'>>): boolean {
  const allContexts = raw['all-contexts'] === true
  if (allContexts && credentials.serviceAccount) {
    throw new UsageError(`${where('all-contexts')} serves every context of a kubeconfig, and none was found: in a pod, only the pod's own cluster is served (as its service account); add --kubeconfig FILE, or list the clusters in a config file's clusters:`)
  }
  if (allContexts && !credentials.kubeconfig) {
    throw new UsageError(`${where('all-contexts')} serves every context of a kubeconfig, and none is read when --upstream or --cert is given; add --kubeconfig FILE, or list the clusters in a config file's clusters:`)
  }
  return allContexts
}

function logLevelOf (raw: RawSettings, where: Where): LogLevel {
  const logLevel = text(raw, 'log-level') as LogLevel
  if (!LOG_LEVELS.includes(logLevel)) throw mustBe(where('log-level'), `one of ${LOG_LEVELS.join(', ')}`, logLevel)
  return logLevel
}

function probePathOf (raw: RawSettings, where: Where): string {
  const probePath = text(raw, 'probe-path')
  if (!probePath.startsWith('/')) throw new UsageError(`${where('probe-path')} must start with /, got '${probePath}'`)
  return probePath
}

function expiryDays (raw: RawSettings, where: Where): { warningDays: number; criticalDays: number } {
  const warningDays = raw['expiry-warning-days'] as number
  const criticalDays = raw['expiry-critical-days'] as number
  if (!(criticalDays >= 0 && warningDays >= criticalDays)) {
    throw new UsageError(`${where('expiry-warning-days')} (${warningDays}) must be at least ${where('expiry-critical-days')} (${criticalDays}), both zero or more`)
  }
  return { warningDays, criticalDays }
}

/** kubectl proxy's form: comma-separated regular expressions; matched case-insensitively so case cannot dodge a rule. */
function regexps (raw: RawSettings, name: OptionName, where: Where): RegExp[] {
  const value = str(raw, name) ?? ''
  return value.split(',').map((p) => p.trim()).filter(Boolean).map((p) => {
    try {
      return new RegExp(p, 'i')
    } catch (err) {
      throw new UsageError(`${where(name)}: '${p}' is not a valid regular expression (${(err as Error).message})`)
    }
  })
}

function origins (raw: RawSettings, where: Where): string[] {
  const value = str(raw, 'allow-origin')
  if (!value) return []
  return value.split(',').map((o) => o.trim()).filter(Boolean).map((o) => {
    let url: URL
    try {
      url = new URL(o)
    } catch {
      throw new UsageError(`${where('allow-origin')} '${o}' is not an origin; expected e.g. http://localhost:3000`)
    }
    if (url.origin === 'null' || url.pathname !== '/' || url.search || o.endsWith('/')) {
      throw new UsageError(`${where('allow-origin')} '${o}' is not an origin: scheme, host and port only, e.g. http://localhost:3000`)
    }
    return url.origin
  })
}
