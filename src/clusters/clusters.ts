// Several clusters behind one port (--all-contexts, a config file's `clusters:`). Each cluster is a
// credential store with its own pool, readiness probe and expiry checks, so one cluster's broken
// certificate or unreachable server never touches another. A request names its cluster with the
// prefix /clusters/<encodeURIComponent(name)>/, removed before forwarding; without it, the default.
import type { IncomingMessage } from 'node:http'
import { listNames } from '../credentials/kubeconfig.js'
import { forwardTarget, originForm, splitClusterPrefix } from '../admission/target.js'
import type { ErrorAnswer } from '../doors/status.js'
import type { Cluster } from './cluster.js'
import type { ClusterParts } from './parts.js'

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

  /** every cluster served, the default first */
  constructor (clusters: Cluster[]) {
    const defaultCluster = clusters.find((c) => c.isDefault)
    if (!defaultCluster) throw new Error('no default cluster')
    this.default = defaultCluster
    this.multi = clusters.length > 1
    this.#byName = new Map(clusters.map((c) => [c.name, c]))
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

  /** The default cluster's parts: it is open from the moment the app is built until it is closed. */
  get main (): ClusterParts {
    return this.default.parts!
  }

  /** Opens the others that can be opened now, in parallel; a broken one is logged and left broken. */
  async start (): Promise<void> {
    await Promise.all(this.all.map((c) => c.start()))
  }

  /** SIGHUP: every open cluster reads its credentials again; a broken one tries to open again. */
  reload (trigger: string): void {
    for (const cluster of this.all) cluster.reload(trigger)
  }

  /** From the first moment of a stop: requests waiting on a cluster's exec plugin get their 503 at once. */
  stopOpening (): void {
    for (const cluster of this.all) cluster.stopOpening()
  }

  async close (): Promise<void> {
    await Promise.all(this.all.map((c) => c.close()))
  }
}
