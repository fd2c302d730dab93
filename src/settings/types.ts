// What the settings are, as read (Settings) and as they mean (Config), and what the command line asks for.
import type { ProxyEnvironment } from '../upstream/connect-proxy.js'
import type { CredentialSpec } from '../credentials/source.js'
import type { InCluster } from '../credentials/in-cluster.js'
import type { CallerTokenSource } from '../admission/caller-token.js'
import type { OptionName } from './options.js'

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
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
  /** `mtls-proxy kubeconfig`: print a kubeconfig for a proxy at this address serving these clusters */
  | KubeconfigCommand

export interface KubeconfigCommand {
  action: 'kubeconfig'
  address: string
  port: number
  output: 'yaml' | 'json'
  /** the settings that say which clusters the proxy serves */
  clusterSettings: Pick<Config, 'credentials' | 'allContexts' | 'clusters'>
  /** the default cluster's kubeconfig is the one kubectl would read, nothing picked from it: where there is none, no namespace */
  kubeconfigOptional: boolean
}

export type RawSettings = Partial<Record<OptionName, string | number | boolean>>
/** Where each setting was given, for messages: `--cacert`, `MTLS_PROXY_CACERT`, or `'cacert' (config file F)`. */
export type GivenAt = Partial<Record<OptionName, string>>
/** Where a setting was given, for a message about it; a setting given nowhere is named by its flag. */
export type Where = (name: OptionName) => string

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

/**
 * What kubectl would take from the environment: the kubeconfig files, the proxy to the API server,
 * and in a pod with no kubeconfig, the pod's service account.
 */
export interface Environment {
  kubeconfig: { files: string[]; from: string }
  proxy: ProxyEnvironment
  inCluster: InCluster | undefined
}
