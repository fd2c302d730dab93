// Is a cluster ready, and what is it doing: its readiness probe, its ready state and its /-/status
// report (ghostunnel's status.go). Ready means: a real mutual-TLS request to the API server succeeded
// recently and the client certificate has not expired. An active probe keeps that fresh when nobody is
// using the proxy; proxied traffic counts as well. The /-/ routes that read it are ops/routes.ts.
import type { Logger } from 'pino'
import { clientIdentity } from '../credentials/bundle.js'
import { connectionOf } from '../credentials/wording.js'
import type { CredentialStore } from '../credentials/store.js'
import type { ExpiryMonitor } from './expiry.js'
import type { Upstream } from '../upstream/upstream.js'
import { describeUpstreamError } from '../upstream/failures.js'

/** What the probe is told by the settings. */
export interface ProbeSettings {
  probePath: string
  probeIntervalMs: number
  connectTimeoutMs: number
  /** 0: no limit */
  responseTimeoutMs: number
}

export interface ReadinessDeps {
  upstream: Upstream
  credentials: CredentialStore
  expiry: ExpiryMonitor
  logger: Logger
  now: () => Date
  /** open watches and tunnels, for the report */
  open: () => { watches: number; tunnels: number }
  stopping: () => boolean
}

/** What one probe found: nothing wrong, or what, with the error when no answer came. */
export interface ProbeOutcome {
  failure?: string
  error?: unknown
}

export interface ReadyState {
  ready: boolean
  reason: string
}

// While not ready, check this often, so the proxy is ready again within seconds of the upstream.
const RECOVERY_INTERVAL_MS = 1_000

// A probe must fail fast enough to keep /-/readyz honest.
const MAX_PROBE_TIMEOUT_MS = 10_000

interface ReadinessOptions extends ReadinessDeps {
  probePath: string
  intervalMs: number
  /** how long a probe may take before it counts as failed */
  probeTimeoutMs: number
}

export class Readiness {
  readonly #opts: ReadinessOptions
  #ready = false
  #reason = 'no request to the upstream has completed yet'
  #lastSuccess: number | undefined
  #timer: NodeJS.Timeout | undefined
  #stopped = true
  #probing: Promise<unknown> | undefined
  /** a fault no probe can clear */
  #broken: string | undefined
  /** probeFirst ran */
  #probed = false

  constructor (settings: ProbeSettings, deps: ReadinessDeps) {
    const { connectTimeoutMs, responseTimeoutMs } = settings
    this.#opts = {
      ...deps,
      probePath: settings.probePath,
      intervalMs: settings.probeIntervalMs,
      probeTimeoutMs: Math.min(connectTimeoutMs + (responseTimeoutMs || MAX_PROBE_TIMEOUT_MS), MAX_PROBE_TIMEOUT_MS),
    }
  }

  /** Ready to serve: the credentials are valid and the upstream answered recently. */
  get state (): ReadyState {
    const { credentials } = this.#opts
    const { expiresAt, expiring } = credentials.current
    if (expiresAt && this.#opts.now() > expiresAt) {
      const last = credentials.lastReload
      const why = last?.outcome === 'failed' ? `; renewing it failed: ${last.error}` : ''
      return { ready: false, reason: `${expiring} expired on ${expiresAt.toISOString()}${why}` }
    }
    return this.#upstreamState()
  }

  /** What /-/status says. */
  report (): Record<string, unknown> {
    const { upstream, credentials, expiry } = this.#opts
    const state = this.state
    const open = this.#opts.open()
    return {
      state: this.#opts.stopping() ? 'stopping' : state.ready ? 'ready' : 'not ready',
      reason: state.reason,
      upstream: upstream.display,
      identity: clientIdentity(credentials.current),
      lastUpstreamSuccess: this.#lastSuccess === undefined ? null : new Date(this.#lastSuccess).toISOString(),
      certificates: expiry.reports,
      lastReload: credentials.lastReload ?? null,
      openWatches: open.watches,
      openTunnels: open.tunnels,
    }
  }

  #upstreamState (): ReadyState {
    if (this.#broken) return { ready: false, reason: this.#broken }
    if (!this.#ready) return { ready: false, reason: this.#reason }
    // A success too old to vouch for the upstream (the probe itself is stuck) no longer counts.
    const staleAfter = 3 * this.#opts.intervalMs + this.#opts.probeTimeoutMs
    if (this.#lastSuccess !== undefined && Date.now() - this.#lastSuccess > staleAfter) {
      return { ready: false, reason: `no successful request to the upstream since ${new Date(this.#lastSuccess).toISOString()}` }
    }
    return { ready: true, reason: 'ok' }
  }

  /** Not ready from now on, whatever the upstream says (the listener's socket file was replaced). */
  markBroken (reason: string): void {
    this.#broken = reason
  }

  recordSuccess (): void {
    this.#lastSuccess = Date.now()
    if (!this.#ready) {
      this.#ready = true
      this.#reason = 'ok'
      this.#opts.logger.info({ upstream: this.#opts.upstream.origin }, `upstream reachable over ${connectionOf(this.#opts.credentials.current)}: ready`)
    }
  }

  recordFailure (reason: string): void {
    if (this.#ready || this.#reason !== reason) {
      this.#opts.logger.warn({ upstream: this.#opts.upstream.origin, reason }, `not ready: ${reason}`)
    }
    this.#ready = false
    this.#reason = reason
  }

  /** One probe: any answer but 401 or a 5xx shows the TLS handshake and our identity work. */
  async probe (): Promise<void> {
    this.#record(await this.#attempt(), true)
  }

  /**
   * The first probe, made before the proxy serves: its connection stays pooled for the first
   * request. Resolves with its outcome, or with undefined once `patience` ends. A failure that
   * comes in time goes back to the caller to judge (a misconfiguration stops the start) and to
   * tell, recorded untold; a later outcome is recorded and told like any probe's.
   */
  async probeFirst (patience: Promise<void>): Promise<ProbeOutcome | undefined> {
    let waiting = true
    this.#probed = true
    const probing = this.#attempt().then((outcome) => this.#record(outcome, !waiting || outcome.error === undefined))
    this.#probing = probing
    const outcome = await Promise.race([probing, patience.then(() => undefined)])
    waiting = false
    return outcome
  }

  async #attempt (): Promise<ProbeOutcome> {
    const { upstream, probePath, probeTimeoutMs } = this.#opts
    try {
      const res = await upstream.request({
        origin: upstream.origin,
        path: upstream.path(probePath),
        method: 'GET',
        headers: { accept: 'application/json', 'user-agent': 'mtls-proxy-readiness' },
        headersTimeout: probeTimeoutMs,
        signal: AbortSignal.timeout(probeTimeoutMs),
      })
      await res.body.dump()
      if (res.statusCode === 401) {
        // An exec plugin's credential may have been revoked before its time: ask for a new one.
        void this.#opts.credentials.renew('readiness probe 401')
        const what = this.#opts.credentials.current.clientCertificate ? 'client certificate' : 'token'
        return { failure: `upstream rejected our ${what} (401 Unauthorized): it may have expired or been revoked` }
      }
      if (res.statusCode >= 500) return { failure: `upstream answered ${res.statusCode} to GET ${probePath}` }
      return {}
    } catch (error) {
      const failure = (error as Error).name === 'TimeoutError'
        ? `upstream did not answer GET ${probePath} within ${probeTimeoutMs} ms`
        : describeUpstreamError(error, upstream).message
      return { failure, error }
    }
  }

  #record (outcome: ProbeOutcome, tell: boolean): ProbeOutcome {
    if (outcome.failure === undefined) this.recordSuccess()
    else if (tell) this.recordFailure(outcome.failure)
    else {
      this.#ready = false
      this.#reason = outcome.failure
    }
    return outcome
  }

  start (): void {
    this.#stopped = false
    const loop = async (): Promise<void> => {
      this.#probing = this.probe()
      await this.#probing
      if (!this.#stopped) this.#next(loop)
    }
    // A probe just made before serving counts as the first.
    if (this.#probed) this.#next(loop)
    else void loop()
  }

  #next (loop: () => Promise<void>): void {
    const delay = this.#upstreamState().ready ? this.#opts.intervalMs : Math.min(RECOVERY_INTERVAL_MS, this.#opts.intervalMs)
    this.#timer = setTimeout(() => void loop(), delay)
    this.#timer.unref()
  }

  async stop (): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    await this.#probing
  }
}
