// Is the proxy healthy, and what is it doing: the readiness probe, the ready state, the /-/status
// report and the /-/ routes, in one place (ghostunnel's status.go). Ready means: a real mutual-TLS
// request to the API server succeeded recently and the client certificate has not expired. An
// active probe keeps that fresh when nobody is using the proxy; proxied traffic counts as well.
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { CallerToken } from '../admission/caller-token.js'
import type { Clusters } from './clusters.js'
import { clientIdentity } from '../credentials/bundle.js'
import type { CredentialStore } from '../credentials/store.js'
import type { ExpiryMonitor } from './expiry.js'
import type { Metrics } from '../ops/metrics.js'
import { sendError } from '../doors/status.js'
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

export interface HealthParts {
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

/** The proxy's own endpoints, under /-/: answered here, never forwarded. */
export const OWN_PATHS = ['/-/healthz', '/-/readyz', '/-/status', '/-/metrics']

// While not ready, check this often, so the proxy is ready again within seconds of the upstream.
const RECOVERY_INTERVAL_MS = 1_000

// A probe must fail fast enough to keep /-/readyz honest.
const MAX_PROBE_TIMEOUT_MS = 10_000

interface HealthOptions extends HealthParts {
  probePath: string
  intervalMs: number
  /** how long a probe may take before it counts as failed */
  probeTimeoutMs: number
}

export class Health {
  readonly #opts: HealthOptions
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

  constructor (settings: ProbeSettings, parts: HealthParts) {
    const { connectTimeoutMs, responseTimeoutMs } = settings
    this.#opts = {
      ...parts,
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
      this.#opts.logger.info({ upstream: this.#opts.upstream.origin }, 'upstream reachable over mutual TLS: ready')
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

/** What the /-/ routes read. */
export interface OwnRoutesDeps {
  clusters: Clusters
  metrics: Metrics
  /** the token callers must present; while its file is broken nobody is let in, and the proxy is not ready */
  callerToken: CallerToken | undefined
}

/**
 * /-/healthz, /-/readyz, /-/status and /-/metrics, on the main listener and on the status listener
 * alike. Ready: the default cluster is; `/-/readyz?cluster=NAME` for one. /-/status reports the
 * default cluster, and each cluster when there are several.
 */
export function registerOwnRoutes (app: FastifyInstance, { clusters, metrics, callerToken }: OwnRoutesDeps): void {
  // Nobody can be let in while the callers' token cannot be read: not ready, whatever the clusters say.
  const refusingAll = () => {
    const state = callerToken?.state
    return state && 'broken' in state ? `every caller is refused: ${state.broken}` : undefined
  }
  app.get('/-/healthz', async (_request, reply) => reply.type('text/plain').send('ok'))
  app.get('/-/readyz', async (request, reply) => {
    const name = (request.query as Record<string, unknown>).cluster
    if (name !== undefined && typeof name !== 'string') {
      return sendError(reply, { httpStatus: 400, reason: 'BadRequest', message: 'give ?cluster=NAME once' })
    }
    const cluster = name === undefined ? clusters.default : clusters.get(name)
    if (!cluster) return sendError(reply, clusters.unknown(name!))
    const refusing = refusingAll()
    if (refusing) return sendError(reply, { httpStatus: 503, reason: 'ServiceUnavailable', message: `not ready: ${refusing}` })
    // Files fixed since it broke: asking is reason enough to try them (a plugin never used stays so).
    await cluster.retry()
    const state = cluster.state
    if (state.ready) return reply.type('text/plain').send('ok')
    const which = name === undefined ? '' : ` cluster '${cluster.name}'`
    return sendError(reply, { httpStatus: 503, reason: 'ServiceUnavailable', message: `not ready:${which} ${state.reason}` })
  })
  app.get('/-/status', async (_request, reply) => {
    const own = clusters.default.parts!.health.report()
    const refusing = refusingAll()
    const report = refusing ? { ...own, state: own.state === 'stopping' ? 'stopping' : 'not ready', reason: refusing } : own
    return reply.send(clusters.multi ? { ...report, clusters: clusters.all.map((c) => c.report()) } : report)
  })
  app.get('/-/metrics', async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.exposition()))
  app.all('/-/*', async (request, reply) => sendError(reply, {
    httpStatus: 404, reason: 'NotFound', message: `no such mtls-proxy endpoint: ${request.url} (there are ${OWN_PATHS.join(', ')})`,
  }))
}
