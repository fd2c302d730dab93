// buildApp: the proxy as a Fastify instance. It never listens and never exits; the CLI does.
// Each concern is a module of its own; this file builds the parts and wires them, in one screen.
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { Server as TlsServer } from 'node:tls'
import Fastify, { type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { Accounting } from './accounting.js'
import { installAdmission } from './admission.js'
import type { Config } from './config.js'
import type { CredentialStore } from './credentials/store.js'
import { ExpiryMonitor } from './expiry.js'
import { registerForwarding } from './forwarding.js'
import { checkRequest, hostPatterns, type GuardOptions } from './guard.js'
import { Health } from './health.js'
import { quieter } from './logger.js'
import { Metrics } from './metrics.js'
import { forwardTarget } from './paths.js'
import { portOf, serverOptions } from './server-options.js'
import { Shutdown } from './shutdown.js'
import { buildStatusListener } from './status-listener.js'
import { endSocketWithError, sendError } from './status-errors.js'
import { Tunnels } from './upgrade.js'
import { Upstream } from './upstream.js'
import { OpenWatches } from './watches.js'

export interface AppDeps {
  logger: Logger
  /** the credentials in use, opened by the caller; the app reads it, watches it and closes it */
  credentials: CredentialStore
  /** the clock for expiry checks; tests move it instead of waiting for days */
  now?: () => Date
  /** Node process metrics (event loop, memory, …) in /-/metrics; default on */
  processMetrics?: boolean
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

// A probe must fail fast enough to keep /-/readyz honest.
const MAX_PROBE_TIMEOUT_MS = 10_000

export async function buildApp (config: Config, deps: AppDeps): Promise<App> {
  const { logger, credentials } = deps
  const now = deps.now ?? (() => new Date())
  const listener = credentials.current.listener
  const app = Fastify({
    loggerInstance: quieter(logger),
    ...serverOptions(),
    // Our own 503 (shutdown.ts) is a Status object; Fastify's default is not.
    return503OnClosing: false,
    // Watches and uploads may take as long as they take; slow-header protection stays on (Node's 60 s).
    requestTimeout: 0,
    // Routed and forwarded: the normalised target the guard judged (absolute-form reduced to its path).
    rewriteUrl: (req) => forwardTarget(req.url ?? '/'),
    // HTTPS on the listener (--listen-cert): what clients like kubectl need before they send a token.
    ...(listener ? { https: { cert: listener.certPem, key: listener.keyPem } } : {}),
  })
  // Past this many client connections, new ones are refused; open watches are never cut.
  app.server.maxConnections = config.maxConnections

  const upstream = new Upstream(config, credentials)
  const watches = new OpenWatches()
  const shutdown = new Shutdown()
  const expiry = new ExpiryMonitor({
    thresholds: config.expiry,
    intervalMs: config.expiry.checkIntervalMs,
    logger,
    now,
    bundle: () => credentials.current,
    serverCertificate: () => upstream.probeCertificate(),
  })
  const guard: GuardOptions = {
    ...config,
    acceptHosts: hostPatterns(config.acceptHosts, config.address),
    tokenDigest: () => credentials.current.callerTokenDigest,
    listenPort: () => portOf(app.server),
    scheme: config.https ? 'https' : 'http',
    admitOwnOrigin: true,
  }
  // Who may use the proxy: one decision for ordinary requests and upgrade tunnels alike.
  const admit = (target: string, req: IncomingMessage, door: 'request' | 'upgrade') => checkRequest(target, req, guard, door) ??
    (shutdown.closing ? { httpStatus: 503, reason: 'ServiceUnavailable', message: 'mtls-proxy is shutting down' } : undefined)
  const tunnels = new Tunnels({
    upstream,
    admit: (target, req) => admit(target, req, 'upgrade'),
    keepAliveMs: config.keepAliveMs,
    record: (r) => accounting.record(r),
    onUpstreamError: (cause) => metrics.upstreamError(cause),
  })
  const metrics = new Metrics({
    openWatches: () => watches.size,
    openTunnels: () => tunnels.size,
    certificates: () => expiry.reports,
  }, { processMetrics: deps.processMetrics ?? true })
  const accounting = new Accounting(metrics, logger, config.accessLog)
  const health = new Health({
    upstream,
    credentials,
    expiry,
    metrics,
    probePath: config.probePath,
    intervalMs: config.probeIntervalMs,
    probeTimeoutMs: Math.min(config.connectTimeoutMs + (config.responseTimeoutMs || MAX_PROBE_TIMEOUT_MS), MAX_PROBE_TIMEOUT_MS),
    logger,
    now,
    open: () => ({ watches: watches.size, tunnels: tunnels.size }),
    stopping: () => shutdown.closing,
  })
  const statusApp = buildStatusListener(logger, health, config.statusAddress?.host ?? config.address, guard)

  credentials.onOutcome((outcome) => metrics.reload(outcome.outcome, new Date(outcome.at)))
  credentials.onChange((bundle) => {
    // New connections to the listener get the rotated certificate; open ones keep theirs. Checked
    // servable when loaded; should OpenSSL refuse it anyway, the old certificate goes on serving.
    if (bundle.listener) {
      try {
        (app.server as unknown as TlsServer).setSecureContext({ cert: bundle.listener.certPem, key: bundle.listener.keyPem })
      } catch (err) {
        const message = (err as Error).message
        logger.error({ err: message }, `the new --listen-cert could not be put in use; still serving the previous one: ${message}`)
      }
    }
    void expiry.check()
  })

  app.decorate('health', health)
  app.decorate('upstream', upstream)
  app.decorate('tunnels', tunnels)
  app.decorate('credentials', credentials)
  app.decorate('expiry', expiry)
  app.decorate('metrics', metrics)
  app.decorate('statusApp', statusApp)
  accounting.install(app)
  installAdmission(app, (target, req) => admit(target, req, 'request'), () => shutdown.closing)
  // CONNECT would make us a tunnel to anywhere. Node hands it to this event, outside Fastify.
  app.server.on('connect', (_req: IncomingMessage, socket: Socket) => {
    endSocketWithError(socket, { httpStatus: 405, reason: 'MethodNotAllowed', message: 'CONNECT is refused: mtls-proxy is not an open proxy' })
  })
  // exec, attach, cp and port-forward: Node hands `Connection: Upgrade` requests to this event, past Fastify.
  app.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => tunnels.handle(req, socket, head))
  app.setErrorHandler((err: Error & { statusCode?: number }, request, reply) => {
    const code = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500
    if (code === 500) request.log.error({ err }, 'unexpected error')
    return sendError(reply, { httpStatus: code, reason: code === 500 ? 'InternalError' : 'BadRequest', message: err.message })
  })
  // The guard refused every method that is not forwarded, so what is left is a path with no route.
  app.setNotFoundHandler((request, reply) => sendError(reply, {
    httpStatus: 404, reason: 'NotFound', message: `no such mtls-proxy endpoint: ${request.url}`,
  }))
  health.registerRoutes(app)
  await registerForwarding(app, {
    upstream, credentials, health, metrics, watches, closing: () => shutdown.closing, clientBodyTimeoutMs: config.clientBodyTimeoutMs,
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
