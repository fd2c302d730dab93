// Ready means: a real mutual-TLS request to the API server succeeded recently. An active probe
// keeps that fresh when nobody is using the proxy; proxied traffic counts as well.
import type { Logger } from 'pino'
import type { Upstream } from './upstream.js'
import { describeUpstreamError } from './upstream-error.js'

export interface ReadinessOptions {
  upstream: Upstream
  probePath: string
  intervalMs: number
  /** how long a probe may take before it counts as failed */
  probeTimeoutMs: number
  logger: Logger
}

export interface ReadinessState {
  ready: boolean
  reason: string
  lastSuccess: Date | undefined
}

// While not ready, check this often, so the proxy is ready again within seconds of the upstream.
const RECOVERY_INTERVAL_MS = 1_000

export class Readiness {
  readonly #opts: ReadinessOptions
  #ready = false
  #reason = 'no request to the upstream has completed yet'
  #lastSuccess: number | undefined
  #timer: NodeJS.Timeout | undefined
  #stopped = true
  #probing: Promise<void> | undefined
  /** a fault no probe can clear */
  #broken: string | undefined

  constructor (opts: ReadinessOptions) {
    this.#opts = opts
  }

  get state (): ReadinessState {
    const { ready, reason } = this.#current()
    return { ready, reason, lastSuccess: this.#lastSuccess === undefined ? undefined : new Date(this.#lastSuccess) }
  }

  #current (): { ready: boolean; reason: string } {
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
    const { upstream, probePath, probeTimeoutMs } = this.#opts
    try {
      const res = await upstream.request({
        origin: upstream.origin,
        path: upstream.url.pathname.replace(/\/$/, '') + probePath,
        method: 'GET',
        headers: { accept: 'application/json', 'user-agent': 'mtls-proxy-readiness' },
        headersTimeout: probeTimeoutMs,
        signal: AbortSignal.timeout(probeTimeoutMs),
      })
      await res.body.dump()
      if (res.statusCode === 401) {
        this.recordFailure('upstream rejected our client certificate (401 Unauthorized): it may have expired or been revoked')
      } else if (res.statusCode >= 500) {
        this.recordFailure(`upstream answered ${res.statusCode} to GET ${probePath}`)
      } else {
        this.recordSuccess()
      }
    } catch (err) {
      const failure = (err as Error).name === 'TimeoutError'
        ? `upstream did not answer GET ${probePath} within ${probeTimeoutMs} ms`
        : describeUpstreamError(err, upstream.url, upstream.serverName).message
      this.recordFailure(failure)
    }
  }

  start (): void {
    this.#stopped = false
    const loop = async (): Promise<void> => {
      this.#probing = this.probe()
      await this.#probing
      if (this.#stopped) return
      const delay = this.#current().ready ? this.#opts.intervalMs : Math.min(RECOVERY_INTERVAL_MS, this.#opts.intervalMs)
      this.#timer = setTimeout(() => void loop(), delay)
      this.#timer.unref()
    }
    void loop()
  }

  async stop (): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    await this.#probing
  }
}
