// buildApp: the proxy as a Fastify instance. It never listens and never exits; the CLI does.
// Each concern is a module of its own; this file builds the parts and wires them, in one screen.
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { Accounting } from './ops/accounting.js'
import { CallerToken } from './admission/caller-token.js'
import { installAdmission, refuseConnect } from './admission/hook.js'
import { Cluster, type ClusterDefinition } from './clusters/cluster.js'
import { Clusters } from './clusters/clusters.js'
import { partsBuilder, type ClusterParts } from './clusters/parts.js'
import { checkUpstream } from './clusters/startup-check.js'
import type { Config } from './settings/types.js'
import { registerForwarding } from './forwarding/routes.js'
import { Cors } from './admission/cors.js'
import { checkPreflight, checkRequest, FORWARDED_METHODS, listenerGuard, rulesNamingPrefix, type Door, type GuardOptions } from './admission/guard.js'
import { registerOwnRoutes } from './ops/routes.js'
import { Redirects } from './forwarding/redirects.js'
import { Metrics, type MetricsOptions } from './ops/metrics.js'
import { createMainServer, portOf } from './doors/listener.js'
import { Shutdown } from './doors/shutdown.js'
import { buildStatusListener } from './ops/status-listener.js'
import { installErrorHandlers, type ErrorAnswer } from './doors/status.js'
import { Tunnels } from './forwarding/tunnels.js'
import { OpenWatches } from './forwarding/watches.js'

export interface AppDeps {
  logger: Logger
  /**
   * for what concerns the whole proxy rather than one request: readiness, expiry, the listener's rotation.
   * Default: logger. Under --workers, one worker says these and the others are given a silent logger.
   */
  events?: Logger
  /**
   * every cluster served (clusters/definitions.ts): the default is opened while the app is built, its
   * failure the build's; the others, each under /clusters/NAME/, when the app is ready
   */
  clusters: ClusterDefinition[]
  /** the clock for expiry checks; tests move it instead of waiting for days */
  now?: () => Date
  metrics?: MetricsOptions
  /** aborted while the default cluster opens (a signal): its exec plugin is ended and the build fails */
  stopStarting?: AbortSignal
  /** the default cluster's first probe judges the settings before the app is returned; default true */
  startupCheck?: boolean
}

declare module 'fastify' {
  interface FastifyInstance {
    clusters: Clusters
    /** the token callers must present (--token-file), when one is asked for */
    callerToken: CallerToken | undefined
    tunnels: Tunnels
    metrics: Metrics
    /** serves only the /-/ endpoints; the CLI listens on it when --status-address is set */
    statusApp: FastifyInstance
  }
}

export type App = FastifyInstance

export async function buildApp (config: Config, deps: AppDeps): Promise<App> {
  const { logger } = deps
  const events = deps.events ?? logger
  // Read before anything else is built: a token file that cannot be used stops the start.
  const callerToken = config.callerToken && await CallerToken.open(config.callerToken, events)
  const now = deps.now ?? (() => new Date())
  const watches = new OpenWatches()
  const shutdown = new Shutdown()
  // The tunnels are made with the servers, once the default cluster is open.
  const live: { tunnels?: Tunnels } = {}
  const openTunnels = () => live.tunnels?.size ?? 0
  const open = () => ({ watches: watches.size, tunnels: openTunnels() })
  const metrics = new Metrics({
    openWatches: () => watches.size,
    openTunnels,
    certificates: () => clusters.opened.flatMap(({ name, expiry }) => expiry.reports.map((r) => ({ ...r, cluster: name }))),
  }, deps.metrics)
  // Every cluster alike: its own pool, probe and expiry checks, around its own credentials.
  const build = partsBuilder({ config, metrics, now, open, stopping: () => shutdown.closing })
  const check = deps.startupCheck === false ? undefined : (parts: ClusterParts) => checkUpstream(parts, config.connectTimeoutMs, events)
  const clusters = new Clusters(deps.clusters.map((definition) => new Cluster(definition, { build, check })))
  await openDefault(clusters, deps.stopStarting)
  try {
    return await wire(config, deps, { clusters, callerToken, metrics, watches, shutdown, events, live })
  } catch (err) {
    await clusters.close()
    throw err
  }
}

/** The default cluster, opened while the app is built: the listener's key pair is its, and its failure is the start's. */
async function openDefault (clusters: Clusters, stopStarting: AbortSignal | undefined): Promise<void> {
  const stop = () => { void clusters.default.close() }
  stopStarting?.addEventListener('abort', stop, { once: true })
  try {
    await clusters.default.start()
  } finally {
    stopStarting?.removeEventListener('abort', stop)
  }
}

interface WireDeps {
  clusters: Clusters
  callerToken: CallerToken | undefined
  metrics: Metrics
  watches: OpenWatches
  shutdown: Shutdown
  events: Logger
  live: { tunnels?: Tunnels }
}

/** The servers and the hooks, routes and parts that serve a request, around clusters already open. */
async function wire (config: Config, deps: AppDeps, built: WireDeps): Promise<App> {
  const { clusters, callerToken, metrics, watches, shutdown, events, live } = built
  const { logger } = deps
  const limits = { maxConnections: config.maxConnections, headTimeoutMs: config.clientHeaderTimeoutMs }
  // A request's target is read once, by the first hook to see it (rewriteUrl here, the upgrade handler for tunnels).
  const app = createMainServer(logger, clusters.main.credentials, limits, events, (req) => clusters.route(req).target.forward)
  if (clusters.multi) {
    const rules = [{ flag: '--accept-paths', patterns: config.acceptPaths }, { flag: '--reject-paths', patterns: config.rejectPaths }]
    for (const warning of rulesNamingPrefix(rules, clusters.all.map((c) => c.name))) events.warn(warning)
  }
  const guard = listenerGuard(config, () => callerToken?.state, () => portOf(app.server))
  // Who may use the proxy: one decision for ordinary requests and upgrade tunnels alike.
  const admit = (req: IncomingMessage, door: Door) => checkRequest(clusters.route(req).target, req, guard, door) ??
    clusters.check(req) ??
    (shutdown.closing ? { httpStatus: 503, reason: 'ServiceUnavailable', message: 'mtls-proxy is shutting down' } : undefined)
  // The cluster an admitted request names (check() made sure there is one).
  const clusterOf = (req: IncomingMessage) => {
    const cluster = clusters.of(req)!
    return cluster.parts ?? cluster.open()
  }
  const clusterName = (req: IncomingMessage) => clusters.of(req)?.name ?? ''
  const confine = confiner(clusters, guard, metrics)
  const tunnels = new Tunnels({
    admit: (req) => admit(req, 'upgrade'),
    route: (req) => ({ cluster: clusterOf(req), forward: clusters.route(req).target.forward }),
    clusterName,
    keepAliveMs: config.keepAliveMs,
    record: (r) => accounting.record(r),
    onUpstreamError: (cause, cluster) => metrics.upstreamError(cause, cluster.name),
    onUnauthorized: (cluster) => { void cluster.credentials.renew('upstream 401') },
    confine: (req, headers, cluster, statusCode) => confine(req, headers, cluster, statusCode, logger),
  })
  live.tunnels = tunnels
  const accounting = new Accounting(metrics, logger, config.accessLog, { of: clusterName, show: clusters.multi })
  const statusHost = config.statusAddress?.host ?? config.address
  const own = { clusters, metrics, callerToken }
  const statusApp = buildStatusListener(logger, own, { host: statusHost, acceptHosts: config.acceptHosts }, guard)

  app.decorate('tunnels', tunnels)
  app.decorate('clusters', clusters)
  app.decorate('callerToken', callerToken)
  app.decorate('metrics', metrics)
  app.decorate('statusApp', statusApp)
  accounting.install(app)
  const cors = config.allowOrigins.length > 0 ? new Cors(config.allowOrigins, FORWARDED_METHODS) : undefined
  installAdmission(app, (req) => admit(req, 'request'), () => shutdown.closing,
    // A preflight never carries the token: its answer names no cluster where a token is asked for.
    cors && { cors, preflight: (req) => checkPreflight(clusters.route(req).target, req, guard) ?? clusters.check(req, !callerToken) })
  refuseConnect(app)
  // exec, attach, cp and port-forward: Node hands `Connection: Upgrade` requests to this event, past Fastify.
  app.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => tunnels.handle(req, socket, head))
  // The guard refused every method that is not forwarded, so what is left is a path with no route.
  installErrorHandlers(app, (url) => `no such mtls-proxy endpoint: ${url}`)
  registerOwnRoutes(app, own)
  await registerForwarding(app, {
    upstream: clusters.main.upstream,
    cluster: (request) => clusterOf(request.raw),
    watch: (request) => clusters.route(request.raw).target.watch,
    metrics,
    watches,
    closing: () => shutdown.closing,
    clientBodyTimeoutMs: config.clientBodyTimeoutMs,
    cors,
    confine: (request, headers, cluster, statusCode) => confine(request.raw, headers, cluster, statusCode, request.log),
  })
  app.addHook('onReady', async () => {
    callerToken?.watch()
    // The others: opened now, or (an exec plugin) on first use; a broken one is logged and answers 503.
    await clusters.start()
  })
  app.addHook('preClose', async () => clusters.stopOpening())
  shutdown.install(app, {
    graceMs: config.shutdownTimeoutMs,
    watches,
    tunnels,
    stop: [() => statusApp.close(), () => callerToken?.close(), () => clusters.close()],
  })
  return app
}

type Confine = (
  req: IncomingMessage, headers: string[], cluster: ClusterParts, statusCode: number, log: Pick<Logger, 'error'>
) => ErrorAnswer | undefined

/**
 * An answer's Location must keep its client in the cluster the request named (forwarding/redirects.ts);
 * else the answer is refused, logged and counted.
 */
function confiner (clusters: Clusters, guard: GuardOptions, metrics: Metrics): Confine {
  const redirects = new Redirects({ scheme: guard.scheme, port: guard.listenPort, acceptHosts: guard.acceptHosts })
  return (req, headers, cluster, statusCode, log) => {
    const { target } = clusters.route(req)
    const why = redirects.confine(headers, () => ({
      host: req.headers.host ?? 'localhost',
      target: target.origin,
      prefix: target.prefix,
      cluster: cluster.name,
      landing: (t) => clusters.landing(t)?.name,
    }))
    if (why === undefined) return undefined
    const message = `the API server of cluster '${cluster.name.slice(0, 100)}' answered ${statusCode}, and ${why}: mtls-proxy refused the answer`
    log.error({ cluster: cluster.name, status: statusCode, url: target.raw.slice(0, 200) }, message)
    metrics.upstreamError('redirect', cluster.name)
    return { httpStatus: 502, reason: 'BadGateway', message }
  }
}
