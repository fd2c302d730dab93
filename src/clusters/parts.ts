// What serves one cluster once its credentials are open: its pool, its readiness probe and its
// expiry checks, around its own store. Every cluster's parts are made here, the default's included,
// and started and stopped through one list, so a new part is one entry.
import type { Logger } from 'pino'
import type { Config } from '../settings/types.js'
import type { CredentialStore } from '../credentials/store.js'
import type { Metrics } from '../ops/metrics.js'
import { Upstream } from '../upstream/upstream.js'
import { ExpiryMonitor } from './expiry.js'
import { Readiness } from './readiness.js'

/** What keeps a part current while the cluster serves. */
export interface Lifecycle {
  start: () => void
  stop: () => void | Promise<void>
}

export interface ClusterParts {
  name: string
  credentials: CredentialStore
  upstream: Upstream
  readiness: Readiness
  expiry: ExpiryMonitor
  /** started in this order, stopped in the reverse */
  lifecycle: Lifecycle[]
}

/** What the parts of every cluster share: the proxy's settings, metrics and clock, and what the probe reports. */
export interface PartsDeps {
  config: Config
  metrics: Metrics
  now: () => Date
  /** open watches and tunnels, for /-/status */
  open: () => { watches: number; tunnels: number }
  stopping: () => boolean
}

/** Builds a cluster's parts around its open store; nothing is started. */
export type BuildParts = (name: string, store: CredentialStore, logger: Logger) => ClusterParts

export function partsBuilder (deps: PartsDeps): BuildParts {
  const { config, metrics, now } = deps
  return (name, store, logger) => {
    const upstream = new Upstream(config, store)
    const expiry = new ExpiryMonitor(config.expiry, {
      logger, now, bundle: () => store.current, serverCertificate: () => upstream.serverCertificate(),
    })
    const readiness = new Readiness(config, { upstream, credentials: store, expiry, logger, now, open: deps.open, stopping: deps.stopping })
    metrics.addCluster(name)
    store.onOutcome((outcome) => metrics.reload(name, outcome.outcome, new Date(outcome.at)))
    store.onChange(() => { void expiry.check() })
    const lifecycle: Lifecycle[] = [
      { start: () => {}, stop: () => upstream.close() },
      readiness,
      { start: () => store.watch(), stop: () => store.close() },
      expiry,
    ]
    return { name, credentials: store, upstream, readiness, expiry, lifecycle }
  }
}

/** Starts what keeps a cluster's parts current: the probe, the file watch, the expiry checks. */
export function startParts (parts: ClusterParts): void {
  for (const part of parts.lifecycle) part.start()
}

export async function stopParts (parts: ClusterParts): Promise<void> {
  for (const part of [...parts.lifecycle].reverse()) await part.stop()
}
