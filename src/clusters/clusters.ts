// Several clusters behind one port (--all-contexts, a config file's `clusters:`). Each cluster is a
// credential store with its own pool, readiness probe and expiry checks, so one cluster's broken
// certificate or unreachable server never touches another. A request names its cluster with the
// prefix /clusters/<encodeURIComponent(name)>/, removed before forwarding; without it, the default.
import type { IncomingMessage } from 'node:http'
import { listNames } from '../credentials/kubeconfig.js'
import { readTarget, splitClusterPrefix, type RequestTarget } from '../admission/target.js'
import { isDiscoveryRoot, type ErrorAnswer } from '../doors/status.js'
import type { Cluster } from './cluster.js'
import type { ClusterParts } from './parts.js'

/** Where a request goes: its cluster (undefined: it names none that is served) and its target, read once. */
export interface Route {
  cluster: Cluster | undefined
  target: RequestTarget
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
  get opened (): ClusterParts[] {
    return this.all.flatMap((c) => (c.parts ? [c.parts] : []))
  }

  /** The cluster a request is for (undefined: it names none that is served). */
  of (req: IncomingMessage): Cluster | undefined {
    return this.route(req).cluster
  }

  /**
   * Decided once per request, for every door alike, from the target as the client sent it: the first
   * to ask is the first hook (the main server's rewriteUrl, or the tunnels' upgrade handler), before
   * anything rewrites req.url.
   */
  route (req: IncomingMessage): Route {
    let route = this.#routes.get(req)
    if (!route) {
      route = this.#routeTarget(req.url ?? '/')
      this.#routes.set(req, route)
    }
    return route
  }

  /** Where a target (origin or absolute form, as a client sends it) goes. */
  #routeTarget (raw: string): Route {
    const target = readTarget(raw, this.multi ? this.#split : undefined)
    if (!target.prefixed) return { cluster: this.default, target }
    // (a name not served is no key of the table: the longest served name was matched first)
    return { cluster: target.name === undefined ? undefined : this.#byName.get(target.name), target }
  }

  readonly #split = (origin: string) => splitClusterPrefix(origin, (name) => this.#byName.has(name), this.#longest)

  /**
   * The cluster a target (origin form) would be served from if a client asked it, judged as check()
   * judges a request; undefined when it would be refused.
   */
  landing (target: string): Cluster | undefined {
    const route = this.#routeTarget(target)
    if (route.target.prefixed) return route.cluster
    return this.multi && PLAIN_PREFIX.test(route.target.forward) ? undefined : this.default
  }

  /**
   * After the guard: the cluster named must be served, and the proxy's own endpoints are not under a
   * prefix. `listNames`: a name no cluster has is answered with the names that exist (not to a caller
   * the token has not admitted).
   */
  check (req: IncomingMessage, listNames = true): ErrorAnswer | undefined {
    if (!this.multi) return undefined
    const { cluster, target } = this.route(req)
    if (!target.prefixed) {
      // `//clusters/prod/…` or `/./clusters/…` would reach the default cluster as a path of its own, judged as one.
      if (PLAIN_PREFIX.test(target.forward)) {
        return { httpStatus: 400, reason: 'BadRequest', message: 'write the cluster prefix plainly, as /clusters/NAME/…' }
      }
      return undefined
    }
    if (target.name === undefined) {
      return { httpStatus: 400, reason: 'BadRequest', message: 'malformed percent-encoding in the cluster name after /clusters/' }
    }
    if (!cluster) return this.unknown(target.name, listNames, target.forward)
    if (target.forward.startsWith('/-/')) {
      return {
        httpStatus: 404,
        reason: 'NotFound',
        message: 'mtls-proxy\'s own endpoints are not under /clusters/NAME/: ask /-/readyz?cluster=NAME, or /-/status for every cluster',
      }
    }
    return undefined
  }

  /**
   * The 404 for a name no cluster has, listing those that exist if `list`, each written as it goes in
   * a URL. On /api and /apis it is a 403: kubectl's discovery starts there, takes a 404 on /api for
   * "no legacy group" and words a 404 on /apis itself, so a mistyped name came out as "the server
   * could not find the requested resource"; a 403's text it prints as sent.
   */
  unknown (name: string, list = true, path = ''): ErrorAnswer {
    const message = `mtls-proxy serves no cluster named '${encodeURIComponent(name).slice(0, 100)}' (/clusters/NAME/, the name URI-encoded)` +
      (list ? `; ${listNames([...this.#byName.keys()].map(encodeURIComponent)).replace(/^it has/, 'it serves')}` : '')
    return isDiscoveryRoot(path)
      ? { httpStatus: 403, reason: 'Forbidden', message }
      : { httpStatus: 404, reason: 'NotFound', message }
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
