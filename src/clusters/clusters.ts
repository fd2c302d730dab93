// Several clusters behind one port (--all-contexts, a config file's `clusters:`). Each cluster is a
// credential store with its own pool, readiness probe and expiry checks, so one cluster's broken
// certificate or unreachable server never touches another. A request names its cluster with the
// prefix /clusters/<encodeURIComponent(name)>/, removed before forwarding; without it, the default.
import type { IncomingMessage } from 'node:http'
import type { Logger } from 'pino'
import { clientIdentity } from '../credentials/bundle.js'
import { listNames } from '../credentials/kubeconfig.js'
import type { CredentialSource } from '../credentials/source.js'
import type { CredentialStore } from '../credentials/store.js'
import { firstLine } from '../util/errors.js'
import type { ExpiryMonitor } from './expiry.js'
import type { Health, ReadyState } from './readiness.js'
import { forwardTarget, originForm, splitClusterPrefix } from '../admission/target.js'
import type { ErrorAnswer } from '../doors/status.js'
import type { Upstream } from '../upstream/upstream.js'

/** What serves one cluster once its credentials are open. */
export interface ClusterParts {
  name: string
  credentials: CredentialStore
  upstream: Upstream
  health: Health
  expiry: ExpiryMonitor
}

/** A cluster besides the default, as the settings name it: nothing is read until it is started. */
export interface ClusterDefinition {
  name: string
  /** checks what can be checked without running an exec plugin; lazy: its credential comes from one */
  inspect: () => Promise<{ lazy: boolean }>
  /** where its credentials come from */
  source: () => CredentialSource
  /** opens its credential store from that source: the same load as every reload */
  open: (source: CredentialSource) => Promise<CredentialStore>
}

/** Builds a cluster's pool, probe and expiry checks around its open store; nothing is started. */
export type BuildParts = (name: string, store: CredentialStore, logger: Logger) => ClusterParts

// A cluster that could not be opened is tried again on a request at most this often: its files may
// have been fixed, its exec plugin may work now.
const RETRY_OPEN_MS = 10_000

/** Starts what keeps a cluster's parts current: the probe, the file watch, the expiry checks. */
export function startParts (parts: ClusterParts): void {
  parts.health.start()
  parts.credentials.watch()
  parts.expiry.start()
}

async function closeParts (parts: ClusterParts): Promise<void> {
  parts.expiry.stop()
  await parts.credentials.close()
  await parts.health.stop()
  await parts.upstream.close()
}

export class Cluster {
  readonly name: string
  readonly isDefault: boolean
  readonly #definition: ClusterDefinition | undefined
  readonly #build: BuildParts | undefined
  readonly #logger: Logger | undefined
  #parts: ClusterParts | undefined
  #opening: Promise<ClusterParts | ErrorAnswer> | undefined
  #failure: { reason: string; at: number } | undefined
  /** the source of an open under way: a stop ends the exec plugin it may be running */
  #source: CredentialSource | undefined
  /** its exec plugin runs on first use */
  #lazy = false
  #closed = false
  /** answers whoever waits on an open still under way once the proxy stops: a plugin may take a minute */
  #stop: ((answer: ErrorAnswer) => void) | undefined
  readonly #stopped = new Promise<ErrorAnswer>((resolve) => { this.#stop = resolve })

  /** The default cluster, opened by the caller; or another, from its definition. */
  constructor (from: { parts: ClusterParts } | { definition: ClusterDefinition; build: BuildParts; logger: Logger }) {
    if ('parts' in from) {
      this.name = from.parts.name
      this.isDefault = true
      this.#parts = from.parts
    } else {
      this.name = from.definition.name
      this.isDefault = false
      this.#definition = from.definition
      this.#build = from.build
      this.#logger = from.logger
    }
  }

  /** Open and serving; undefined until then. */
  get parts (): ClusterParts | undefined {
    return this.#parts
  }

  /**
   * At start: a cluster whose credentials are files (or a token) is opened now, so a mistake in it is
   * logged at once; one whose credential comes from an exec plugin is only checked, and opened on first use.
   */
  async start (): Promise<void> {
    if (this.#parts || !this.#definition) return
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
    this.#opening ??= this.#open().finally(() => { this.#opening = undefined })
    return Promise.race([this.#opening, this.#stopped])
  }

  async #open (): Promise<ClusterParts | ErrorAnswer> {
    const logger = this.#logger!
    const source = this.#definition!.source()
    this.#source = source
    let store: CredentialStore
    try {
      store = await this.#definition!.open(source)
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
      parts = this.#build!(this.name, store, logger)
    } catch (err) {
      // Never a rejection: requests and tunnels wait on this promise, and one cluster's fault must stay its own.
      void store.close()
      return this.#fail(err)
    }
    this.#parts = parts
    this.#failure = undefined
    const { server } = store.current
    logger.info({ upstream: server.url.href, identity: clientIdentity(store.current) },
      `cluster '${this.name}' open: /clusters/${encodeURIComponent(this.name)}/ forwards to ${server.url.origin} as ` +
      clientIdentity(store.current))
    if (server.insecureSkipTlsVerify) {
      logger.warn(`cluster '${this.name}': its kubeconfig sets insecure-skip-tls-verify: the API server's certificate is NOT verified`)
    }
    startParts(parts)
    return parts
  }

  #fail (err: unknown): ErrorAnswer {
    const reason = firstLine(err)
    this.#failure = { reason, at: Date.now() }
    this.#logger!.error({ reason }, `cluster '${this.name}' cannot be served: ${reason}; /clusters/${encodeURIComponent(this.name)}/ ` +
      'answers 503 until it can (tried again on a request, /-/readyz?cluster= or SIGHUP, at most every 10 s); the other clusters serve')
    return unavailable(this.name, reason)
  }

  /** A cluster that could not be opened tries again (SIGHUP, a readiness check); one never used stays unopened. */
  retry (): Promise<unknown> {
    return this.#failure ? this.open() : Promise.resolve()
  }

  /** Ready when open and its own probe says so. */
  get state (): ReadyState {
    if (this.#parts) return this.#parts.health.state
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
    const { openWatches: _w, openTunnels: _t, ...report } = this.#parts.health.report()
    return { ...head, ...report }
  }

  /** Stopping: whoever waits on an open still under way is answered 503 now, and nothing opens any more. */
  stopOpening (): void {
    this.#closed = true
    this.#stop!(unavailable(this.name, 'mtls-proxy is shutting down'))
  }

  /** Closes what it opened; an open still under way has its exec plugin ended, and closes its store when it ends. */
  async close (): Promise<void> {
    this.stopOpening()
    await this.#source?.close()
    // The default cluster's parts are closed by the app itself, in its own order.
    if (this.#parts && !this.isDefault) await closeParts(this.#parts)
  }
}

const unavailable = (name: string, reason: string): ErrorAnswer => ({
  httpStatus: 503, reason: 'ServiceUnavailable', message: `cluster '${name.slice(0, 100)}' cannot be served: ${reason}`,
})

/** Where a request goes: its cluster (undefined: it names none that is served) and the target after the prefix. */
export interface Route {
  cluster: Cluster | undefined
  /** the request names its cluster with /clusters/NAME */
  prefixed: boolean
  /** the prefix as the client wrote it ('' for none): what it would use again to reach the same cluster */
  prefix: string
  /** undefined: its percent-encoding is malformed */
  name: string | undefined
  /** what is forwarded: the request's target, the prefix removed */
  target: string
}

// What a target without the prefix must not become once normalised: a prefix reached by another path than the one judged.
const PLAIN_PREFIX = /^\/clusters(?:[/?]|$)/

export class Clusters {
  readonly default: Cluster
  /** several clusters are served, each under /clusters/NAME/ */
  readonly multi: boolean
  readonly #byName: Map<string, Cluster>
  /** the longest name served: no longer one is looked up */
  readonly #longest: number
  readonly #routes = new WeakMap<IncomingMessage, Route>()
  /** the last target routed: the guard and the request's own route ask for the same one in turn */
  #last: { target: string; route: Route } | undefined

  constructor (defaultCluster: Cluster, others: Cluster[]) {
    this.default = defaultCluster
    this.multi = others.length > 0
    this.#byName = new Map([defaultCluster, ...others].map((c) => [c.name, c]))
    this.#longest = Math.max(...[...this.#byName.keys()].map((n) => n.length))
  }

  get all (): Cluster[] {
    return [...this.#byName.values()]
  }

  get (name: string): Cluster | undefined {
    return this.#byName.get(name)
  }

  /** Open clusters' parts. */
  get open (): ClusterParts[] {
    return this.all.flatMap((c) => (c.parts ? [c.parts] : []))
  }

  /** The cluster a request is for (undefined: it names none that is served). With one cluster, no route is kept. */
  of (req: IncomingMessage): Cluster | undefined {
    return this.multi ? this.route(req).cluster : this.default
  }

  /** What a request's target is forwarded as, before normalising: the prefix removed. */
  target (req: IncomingMessage): string {
    return this.multi ? this.route(req).target : req.url ?? '/'
  }

  /** The prefix a request named its cluster with, as the client wrote it; '' when none. */
  prefixOf (req: IncomingMessage): string {
    return this.multi ? this.route(req).prefix : ''
  }

  /** Decided once per request, from the target as the client sent it, for every door alike. */
  route (req: IncomingMessage): Route {
    let route = this.#routes.get(req)
    if (!route) {
      route = this.routeTarget(req.url ?? '/')
      this.#routes.set(req, route)
    }
    return route
  }

  /** Where a target (origin or absolute form, as a client sends it) goes. */
  routeTarget (target: string): Route {
    if (this.#last?.target === target) return this.#last.route
    const route = this.#route(target)
    this.#last = { target, route }
    return route
  }

  #route (target: string): Route {
    if (!this.multi) return { cluster: this.default, prefixed: false, prefix: '', name: this.default.name, target }
    const split = splitClusterPrefix(originForm(target), (name) => this.#byName.has(name), this.#longest)
    if (!split) return { cluster: this.default, prefixed: false, prefix: '', name: this.default.name, target }
    const cluster = split.served ? this.#byName.get(split.name!) : undefined
    return { cluster, prefixed: true, prefix: cluster ? split.prefix : '', name: split.name, target: split.rest }
  }

  /**
   * The cluster a target (origin form) would be served from if a client asked it, judged as check()
   * judges a request; undefined when it would be refused.
   */
  landing (target: string): Cluster | undefined {
    const route = this.routeTarget(target)
    if (route.prefixed) return route.cluster
    return this.multi && PLAIN_PREFIX.test(forwardTarget(route.target)) ? undefined : this.default
  }

  /**
   * After the guard: the cluster named must be served, and the proxy's own endpoints are not under a
   * prefix. `listNames`: a name no cluster has is answered with the names that exist (not to a caller
   * the token has not admitted).
   */
  check (req: IncomingMessage, listNames = true): ErrorAnswer | undefined {
    if (!this.multi) return undefined
    const route = this.route(req)
    if (!route.prefixed) {
      // `//clusters/prod/…` or `/./clusters/…` would reach the default cluster as a path of its own, judged as one.
      if (PLAIN_PREFIX.test(forwardTarget(route.target))) {
        return { httpStatus: 400, reason: 'BadRequest', message: 'write the cluster prefix plainly, as /clusters/NAME/…' }
      }
      return undefined
    }
    if (route.name === undefined) {
      return { httpStatus: 400, reason: 'BadRequest', message: 'malformed percent-encoding in the cluster name after /clusters/' }
    }
    if (!route.cluster) return this.unknown(route.name, listNames)
    if (forwardTarget(route.target).startsWith('/-/')) {
      return {
        httpStatus: 404,
        reason: 'NotFound',
        message: 'mtls-proxy\'s own endpoints are not under /clusters/NAME/: ask /-/readyz?cluster=NAME, or /-/status for every cluster',
      }
    }
    return undefined
  }

  /** The 404 for a name no cluster has, listing those that exist if `list`. */
  unknown (name: string, list = true): ErrorAnswer {
    return {
      httpStatus: 404,
      reason: 'NotFound',
      message: `mtls-proxy serves no cluster named '${name.slice(0, 100)}' (/clusters/NAME/, the name URI-encoded)` +
        (list ? `; ${listNames(this.#byName.keys()).replace(/^it has/, 'it serves')}` : ''),
    }
  }

  /** Opens the other clusters that can be opened now, in parallel; a broken one is logged and left broken. */
  async start (): Promise<void> {
    await Promise.all(this.all.map((c) => c.start()))
  }

  /** SIGHUP: every open cluster reads its credentials again; a broken one tries to open again. */
  reload (trigger: string): void {
    for (const cluster of this.all) {
      if (cluster.parts) void cluster.parts.credentials.reload(trigger)
      else void cluster.retry()
    }
  }

  /** From the first moment of a stop: requests waiting on a cluster's exec plugin get their 503 at once. */
  stopOpening (): void {
    for (const cluster of this.all) cluster.stopOpening()
  }

  async close (): Promise<void> {
    await Promise.all(this.all.map((c) => c.close()))
  }
}
