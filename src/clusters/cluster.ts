// One cluster, built the same way whichever it is: from its definition (where its credentials come
// from, the server they are bound to) to an open store, then its parts (parts.ts), started and
// stopped here. The default cluster is opened while the app is built and its failure stops the start;
// another is opened when the app is ready (or, for an exec plugin, on first use) and a failure leaves
// it answering 503 while the others serve.
import type { Logger } from 'pino'
import { clientIdentity } from '../credentials/bundle.js'
import type { CredentialSource } from '../credentials/source.js'
import type { CredentialStore } from '../credentials/store.js'
import { firstLine } from '../util/errors.js'
import type { ErrorAnswer } from '../doors/status.js'
import { startParts, stopParts, type BuildParts, type ClusterParts } from './parts.js'
import type { ReadyState } from './readiness.js'

/** A cluster as the settings name it: nothing is read until it is opened. */
export interface ClusterDefinition {
  name: string
  /** served at / as well as under its prefix; its first open is the start's, and a failure stops the start */
  isDefault: boolean
  logger: Logger
  /** checks what can be checked without running an exec plugin; lazy: its credential comes from one */
  inspect: () => Promise<{ lazy: boolean }>
  /** where its credentials come from */
  source: () => CredentialSource
  /** opens its credential store from that source, bound to the server it was read for at start: the same load as every reload */
  open: (source: CredentialSource) => Promise<CredentialStore>
}

export interface ClusterDeps {
  build: BuildParts
  /** judges the default cluster's parts before they serve (the first probe): throws to stop the start */
  check?: (parts: ClusterParts) => Promise<void>
}

// A cluster that could not be opened is tried again on a request at most this often: its files may
// have been fixed, its exec plugin may work now.
const RETRY_OPEN_MS = 10_000

export class Cluster {
  readonly name: string
  readonly isDefault: boolean
  readonly #definition: ClusterDefinition
  readonly #deps: ClusterDeps
  readonly #logger: Logger
  #parts: ClusterParts | undefined
  #opening: Promise<ClusterParts | ErrorAnswer> | undefined
  #failure: { reason: string; at: number; error: unknown } | undefined
  /** the source of an open under way: a stop ends the exec plugin it may be running */
  #source: CredentialSource | undefined
  /** its exec plugin runs on first use */
  #lazy = false
  #closed = false
  /** a reload asked while its credentials are first read: they are read again once open */
  #reloadAsked: string | undefined
  /** answers whoever waits on an open still under way once the proxy stops: a plugin may take a minute */
  #stop: ((answer: ErrorAnswer) => void) | undefined
  readonly #stopped = new Promise<ErrorAnswer>((resolve) => { this.#stop = resolve })

  constructor (definition: ClusterDefinition, deps: ClusterDeps) {
    this.name = definition.name
    this.isDefault = definition.isDefault
    this.#definition = definition
    this.#deps = deps
    this.#logger = definition.logger
  }

  /** Open and serving; undefined until then. */
  get parts (): ClusterParts | undefined {
    return this.#parts
  }

  /**
   * At start: the default cluster is opened, and its failure thrown; another whose credentials are
   * files (or a token) is opened now, so a mistake in it is logged at once; one whose credential comes
   * from an exec plugin is only checked, and opened on first use.
   */
  async start (): Promise<void> {
    if (this.#parts) return
    if (this.isDefault) {
      // Not raced with a stop: the start ends once its exec plugin has, so nothing is left running.
      await this.#begin()
      if (!this.#parts) throw this.#failure?.error ?? new Error(`cluster '${this.name}' was stopped while it opened`)
      return
    }
    try {
      this.#lazy = (await this.#definition.inspect()).lazy
    } catch (err) {
      this.#fail(err)
      return
    }
    if (!this.#lazy) await this.open()
  }

  /** Its parts, opened now if need be, or the 503 that says why it cannot serve. */
  open (): Promise<ClusterParts | ErrorAnswer> {
    if (this.#parts) return Promise.resolve(this.#parts)
    if (this.#closed) return Promise.resolve(unavailable(this.name, 'mtls-proxy is shutting down'))
    if (this.#failure && Date.now() - this.#failure.at < RETRY_OPEN_MS) return Promise.resolve(unavailable(this.name, this.#failure.reason))
    return Promise.race([this.#begin(), this.#stopped])
  }

  #begin (): Promise<ClusterParts | ErrorAnswer> {
    this.#opening ??= this.#open().finally(() => { this.#opening = undefined })
    return this.#opening
  }

  async #open (): Promise<ClusterParts | ErrorAnswer> {
    const source = this.#definition.source()
    this.#source = source
    let store: CredentialStore
    try {
      store = await this.#definition.open(source)
    } catch (err) {
      // Stopped meanwhile (its plugin ended by the stop): no fault of the cluster's to report.
      return this.#closed ? unavailable(this.name, 'mtls-proxy is shutting down') : this.#fail(err)
    } finally {
      this.#source = undefined
    }
    if (this.#closed) {
      void store.close()
      return unavailable(this.name, 'mtls-proxy is shutting down')
    }
    let parts: ClusterParts
    try {
      parts = this.#deps.build(this.name, store, this.#logger)
    } catch (err) {
      // Never a rejection: requests and tunnels wait on this promise, and one cluster's fault must stay its own.
      void store.close()
      return this.#fail(err)
    }
    if (this.isDefault && this.#deps.check) {
      try {
        await this.#deps.check(parts)
      } catch (err) {
        await stopParts(parts)
        return this.#fail(err)
      }
    }
    this.#parts = parts
    this.#failure = undefined
    if (!this.isDefault) this.#announce(store)
    startParts(parts)
    if (this.#reloadAsked !== undefined) void store.reload(this.#reloadAsked)
    return parts
  }

  #announce (store: CredentialStore): void {
    const { server } = store.current
    const identity = clientIdentity(store.current)
    this.#logger.info({ upstream: server.url.href, identity },
      `cluster '${this.name}' open: /clusters/${encodeURIComponent(this.name)}/ forwards to ${server.url.origin} as ${identity}`)
    if (server.insecureSkipTlsVerify) {
      this.#logger.warn(`cluster '${this.name}': its kubeconfig sets insecure-skip-tls-verify: the API server's certificate is NOT verified`)
    }
  }

  #fail (err: unknown): ErrorAnswer {
    const reason = firstLine(err)
    this.#failure = { reason, at: Date.now(), error: err }
    // The default's failure is the start's, said by whoever started it.
    if (!this.isDefault) {
      this.#logger.error({ reason }, `cluster '${this.name}' cannot be served: ${reason}; /clusters/${encodeURIComponent(this.name)}/ answers 503 until it can (tried again on a request, /-/readyz?cluster= or SIGHUP, at most every 10 s); the other clusters serve`)
    }
    return unavailable(this.name, reason)
  }

  /** SIGHUP: an open cluster reads its credentials again; one being opened does once open; a broken one tries to open again. */
  reload (trigger: string): void {
    if (this.#parts) void this.#parts.credentials.reload(trigger)
    else if (this.#opening) this.#reloadAsked = trigger
    else void this.retry()
  }

  /** A cluster that could not be opened tries again (SIGHUP, a readiness check); one never used stays unopened. */
  retry (): Promise<unknown> {
    return this.#failure ? this.open() : Promise.resolve()
  }

  /** Ready when open and its own probe says so. */
  get state (): ReadyState {
    if (this.#parts) return this.#parts.readiness.state
    if (this.#failure) return { ready: false, reason: this.#failure.reason }
    if (this.#opening) return { ready: false, reason: 'its credentials are being read' }
    if (this.#lazy) return { ready: false, reason: 'not used yet: its exec plugin runs on the first request' }
    return { ready: false, reason: 'not open yet' }
  }

  /** Its entry in /-/status. */
  report (): Record<string, unknown> {
    const state = this.state
    const head = { name: this.name, default: this.isDefault, prefix: `/clusters/${encodeURIComponent(this.name)}/` }
    if (!this.#parts) return { ...head, state: this.#failure ? 'broken' : 'not ready', reason: state.reason }
    const { openWatches: _w, openTunnels: _t, ...report } = this.#parts.readiness.report()
    return { ...head, ...report }
  }

  /** Stopping: whoever waits on an open still under way is answered 503 now, and nothing opens any more. */
  stopOpening (): void {
    this.#closed = true
    this.#stop!(unavailable(this.name, 'mtls-proxy is shutting down'))
  }

  /** Stops what it opened; an open still under way has its exec plugin ended, and closes its store when it ends. */
  async close (): Promise<void> {
    this.stopOpening()
    await this.#source?.close()
    if (this.#parts) await stopParts(this.#parts)
  }
}

const unavailable = (name: string, reason: string): ErrorAnswer => ({
  httpStatus: 503, reason: 'ServiceUnavailable', message: `cluster '${name.slice(0, 100)}' cannot be served: ${reason}`,
})
