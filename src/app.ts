// buildApp: the proxy as a Fastify instance. It never listens and never exits; the CLI does.
// Each concern is a module of its own; this file builds the parts and wires them, in one screen.
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { Accounting } from './accounting.js'
import { installAdmission, refuseConnect } from './admission.js'
import type { Config } from './config.js'
import type { CredentialStore } from './credentials/store.js'
import { ExpiryMonitor } from './expiry.js'
import { registerForwarding } from './forwarding.js'
import { Cors } from './cors.js'
import { checkPreflight, checkRequest, FORWARDED_METHODS, listenerGuard, type Door } from './guard.js'
import { Health } from './health.js'
import { Metrics, type MetricsOptions } from './metrics.js'
import { createMainServer, portOf } from './server.js'
import { Shutdown } from './shutdown.js'
import { buildStatusListener } from './status-listener.js'
import { installErrorHandlers } from './status-errors.js'
import { Tunnels } from './upgrade.js'
import { Upstream } from './upstream.js'
import { OpenWatches } from './watches.js'

export interface AppDeps {
  logger: Logger
  /**
   * for what concerns the whole proxy rather than one request: readiness, expiry, the listener's rotation.
   * Default: logger. Under --workers, one worker says these and the others are given a silent logger.
   */
  events?: Logger
  /** the credentials in use, opened by the caller; the app reads it, watches it and closes it */
  credentials: CredentialStore
  /** the clock for expiry checks; tests move it instead of waiting for days */
  now?: () => Date
  metrics?: MetricsOptions
}

declare module 'fastify' {
  interface FastifyInstance {
    health: Health
    upstream: Upstream
    tunnels: Tunnels
    credentials: CredentialStore
    expiry: ExpiryMonitor
    metrics: Metrics
    /** serves only the /-/ endpoints; the CLI listens on it when --status-address is set */
    statusApp: FastifyInstance
  }
}

export type App = FastifyInstance

export async function buildApp (config: Config, deps: AppDeps): Promise<App> {
  const { logger, credentials } = deps
  const events = deps.events ?? logger
  const now = deps.now ?? (() => new Date())
  const app = createMainServer(logger, credentials, config.maxConnections, events)
  const upstream = new Upstream(config, credentials)
  const watches = new OpenWatches()
  const shutdown = new Shutdown()
  const expiry = new ExpiryMonitor(config.expiry, {
    logger: events, now, bundle: () => credentials.current, serverCertificate: () => upstream.serverCertificate(),
  })
  const guard = listenerGuard(config, () => credentials.current.callerTokenDigest, () => portOf(app.server))
  // Who may use the proxy: one decision for ordinary requests and upgrade tunnels alike.
  const admit = (target: string, req: IncomingMessage, door: Door) => checkRequest(target, req, guard, door) ??
    (shutdown.closing ? { httpStatus: 503, reason: 'ServiceUnavailable', message: 'mtls-proxy is shutting down' } : undefined)
  const tunnels = new Tunnels({
    upstream,
    admit: (target, req) => admit(target, req, 'upgrade'),
    keepAliveMs: config.keepAliveMs,
    record: (r) => accounting.record(r),
    onUpstreamError: (cause) => metrics.upstreamError(cause),
    onUnauthorized: () => { void credentials.renew('upstream 401') },
  })
  const metrics = new Metrics({ openWatches: () => watches.size, openTunnels: () => tunnels.size, certificates: () => expiry.reports },
    deps.metrics)
  const accounting = new Accounting(metrics, logger, config.accessLog)
  const open = () => ({ watches: watches.size, tunnels: tunnels.size })
  const health = new Health(config, { upstream, credentials, expiry, metrics, logger: events, now, open, stopping: () => shutdown.closing })
  const statusHost = config.statusAddress?.host ?? config.address
  const statusApp = buildStatusListener(logger, health, { host: statusHost, acceptHosts: config.acceptHosts }, guard)
  credentials.onOutcome((outcome) => metrics.reload(outcome.outcome, new Date(outcome.at)))
  credentials.onChange(() => { void expiry.check() })

  app.decorate('health', health)
  app.decorate('upstream', upstream)
  app.decorate('tunnels', tunnels)
  app.decorate('credentials', credentials)
  app.decorate('expiry', expiry)
  app.decorate('metrics', metrics)
  app.decorate('statusApp', statusApp)
  accounting.install(app)
  const cors = config.allowOrigins.length > 0 ? new Cors(config.allowOrigins, FORWARDED_METHODS) : undefined
  installAdmission(app, (target, req) => admit(target, req, 'request'), () => shutdown.closing,
    cors && { cors, preflight: (target, req) => checkPreflight(target, req, guard) })
  refuseConnect(app)
  // exec, attach, cp and port-forward: Node hands `Connection: Upgrade` requests to this event, past Fastify.
  app.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => tunnels.handle(req, socket, head))
  // The guard refused every method that is not forwarded, so what is left is a path with no route.
  installErrorHandlers(app, (url) => `no such mtls-proxy endpoint: ${url}`)
  health.registerRoutes(app)
  await registerForwarding(app, {
    upstream, credentials, health, metrics, watches, closing: () => shutdown.closing, clientBodyTimeoutMs: config.clientBodyTimeoutMs, cors,
  })
  app.addHook('onReady', async () => {
    health.start()
    credentials.watch()
    expiry.start()
  })
  shutdown.install(app, {
    graceMs: config.shutdownTimeoutMs,
    watches,
    tunnels,
    stop: [() => statusApp.close(), () => expiry.stop(), () => credentials.close(), () => health.stop(), () => upstream.close()],
  })
  return app
}
