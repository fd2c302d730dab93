// buildApp: the proxy as a Fastify instance. It never listens and never exits; the CLI does.
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { Server as TlsServer } from 'node:tls'
import type { Duplex } from 'node:stream'
import proxy from '@fastify/http-proxy'
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import { isLoopback, type Config } from './config.js'
import { clientIdentity, type CredentialBundle } from './credentials.js'
import { checkRequest, FORWARDED_METHODS, forwardTarget, hostPatterns, tokenDigest, type Door, type GuardOptions } from './guard.js'
import { LongRunningResponses } from './inflight.js'
import { quieter } from './logger.js'
import { bodyPending, dropUnreadBody } from './linger.js'
import { createForwarder } from './forward.js'
import { Readiness } from './readiness.js'
import { endWithStatus, sendRefusal, type Refusal } from './status.js'
import { OWN_PATHS, registerOwnEndpoints, type OwnEndpoints, type ReadyState } from './endpoints.js'
import { Metrics, type RequestRecord } from './metrics.js'
import { ExpiryMonitor } from './expiry.js'
import { CertificateReloader } from './reloader.js'
import { probeServerCertificate } from './server-probe.js'
import { Upstream } from './upstream.js'
import { Tunnels } from './upgrade.js'
import { describeUpstreamError } from './upstream-error.js'

export interface AppDeps {
  logger: Logger
  credentials: CredentialBundle
  /** the clock for expiry checks; tests move it instead of waiting for days */
  now?: () => Date
  /** Node process metrics (event loop, memory, …) in /-/metrics; default on */
  processMetrics?: boolean
}

export interface App extends FastifyInstance {
  readiness: Readiness
  upstream: Upstream
  tunnels: Tunnels
  reloader: CertificateReloader
  expiry: ExpiryMonitor
  metrics: Metrics
  /** serves only the /-/ endpoints; the CLI listens on it when --status-address is set */
  statusApp: FastifyInstance
}

// No route has a JSON schema, so Fastify need not load ajv and its compilers (~50 ms of every start).
const NO_SCHEMAS = {
  compilersFactory: {
    buildValidator: () => () => { throw new Error('mtls-proxy routes have no schemas') },
    buildSerializer: () => () => { throw new Error('mtls-proxy routes have no schemas') },
  },
}

// A probe must fail fast enough to keep /-/readyz honest.
const MAX_PROBE_TIMEOUT_MS = 10_000

declare module 'fastify' {
  interface FastifyRequest {
    /** why the request failed, for the access line */
    failure?: string
  }
}

// Wire bytes already counted for earlier requests on a keep-alive connection.
const counted = new WeakMap<Socket, { read: number; written: number }>()

function wireBytes (socket: Socket): { bytesIn: number; bytesOut: number } {
  const before = counted.get(socket) ?? { read: 0, written: 0 }
  const now = { read: socket.bytesRead, written: socket.bytesWritten }
  counted.set(socket, now)
  return { bytesIn: now.read - before.read, bytesOut: now.written - before.written }
}

export async function buildApp (config: Config, deps: AppDeps): Promise<App> {
  const { logger, credentials } = deps
  const now = deps.now ?? (() => new Date())
  const guard: GuardOptions = {
    ...config,
    acceptHosts: hostPatterns(config.acceptHosts, config.address),
    tokenDigest: config.token === undefined ? undefined : tokenDigest(config.token),
    listenPort: () => portOf(app.server),
    scheme: config.https ? 'https' : 'http',
    admitOwnOrigin: true,
  }
  const upstream = new Upstream({
    url: config.upstream,
    tlsServerName: config.tlsServerName,
    connectTimeoutMs: config.connectTimeoutMs,
    responseTimeoutMs: config.responseTimeoutMs,
    insecureSkipTlsVerify: config.insecureSkipTlsVerify,
  }, credentials)
  const readiness = new Readiness({
    upstream,
    probePath: config.probePath,
    intervalMs: config.probeIntervalMs,
    probeTimeoutMs: Math.min(config.connectTimeoutMs + (config.responseTimeoutMs || MAX_PROBE_TIMEOUT_MS), MAX_PROBE_TIMEOUT_MS),
    logger,
  })
  const reloader: CertificateReloader = new CertificateReloader({
    config,
    initial: credentials,
    logger,
    now,
    onBundle: (bundle) => {
      upstream.replace(bundle)
      // New connections to the listener get the rotated certificate; open ones keep theirs.
      // Checked servable when loaded; should OpenSSL refuse it anyway, the old certificate goes on serving.
      try {
        const { listener } = bundle
        if (listener) (app.server as unknown as TlsServer).setSecureContext({ cert: listener.certPem, key: listener.keyPem })
      } catch (err) {
        logger.error({ err: (err as Error).message }, `the new --listen-cert could not be put in use; still serving the previous one: ${(err as Error).message}`)
      }
      void expiry.check()
    },
    onOutcome: (outcome) => metrics.reload(outcome.outcome, new Date(outcome.at)),
  })
  const expiry: ExpiryMonitor = new ExpiryMonitor({
    thresholds: config.expiry,
    intervalMs: config.expiry.checkIntervalMs,
    logger,
    now,
    bundle: () => reloader.current,
    serverCertificate: () => probeServerCertificate(upstream.tlsOptions(), config.connectTimeoutMs),
  })
  const watches = new LongRunningResponses()
  let closing = false
  // Who may use the proxy: one decision for ordinary requests and upgrade tunnels alike.
  const admit = (target: string, req: IncomingMessage, door: Door): Refusal | undefined =>
    checkRequest(target, req, guard, door) ??
    (closing ? { code: 503, reason: 'ServiceUnavailable', message: 'mtls-proxy is shutting down' } : undefined)
  const tunnels = new Tunnels({
    upstream,
    admit: (target, req) => admit(target, req, 'upgrade'),
    connectTimeoutMs: config.connectTimeoutMs,
    responseTimeoutMs: config.responseTimeoutMs,
    keepAliveMs: config.keepAliveMs,
    record: (r) => record(r),
    onUpstreamError: (cause) => metrics.upstreamError(cause),
  })
  const metrics = new Metrics({
    openWatches: () => watches.size,
    openTunnels: () => tunnels.size,
    certificates: () => expiry.reports,
  }, { processMetrics: deps.processMetrics ?? true })
  // The access line holds only the fields of a RequestRecord, never a header, so it skips the
  // redaction pass, which tripled the cost of each line.
  const accessLog = logger.child({}, { redact: [] })
  // Every request and tunnel ends here: counted, and logged unless --no-access-log.
  const record = (r: RequestRecord, reqId?: string) => {
    metrics.request(r)
    if (!config.accessLog) return
    const { duration, ...fields } = r
    accessLog.info({ reqId, ...fields, ms: Math.round(duration * 10_000) / 10 }, 'request')
  }

  const app = Fastify({
    loggerInstance: quieter(logger),
    // One access line per request (ours, below) instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    // Our own 503 below is a Status object; Fastify's default is not.
    return503OnClosing: false,
    // Watches and uploads may take as long as they take; slow-header protection stays on (Node's 60 s).
    requestTimeout: 0,
    // Routed and forwarded: the normalised target the guard judged (absolute-form reduced to its path).
    rewriteUrl: (req) => forwardTarget(req.url ?? '/'),
    schemaController: NO_SCHEMAS,
    // HTTPS on the listener (--listen-cert): what clients like kubectl need before they send a token.
    ...(credentials.listener ? { https: { cert: credentials.listener.certPem, key: credentials.listener.keyPem } } : {}),
  }) as unknown as App
  // Past this many client connections, new ones are refused; open watches are never cut.
  app.server.maxConnections = config.maxConnections
  app.decorate('readiness', readiness)
  app.decorate('upstream', upstream)
  app.decorate('tunnels', tunnels)
  app.decorate('reloader', reloader)
  app.decorate('expiry', expiry)
  app.decorate('metrics', metrics)

  expectContinueAfterTheGuard(app.server)

  // CONNECT would make us a tunnel to anywhere. Node hands it to this event, outside Fastify.
  app.server.on('connect', (_req: IncomingMessage, socket: Socket) => {
    endWithStatus(socket, { code: 405, reason: 'MethodNotAllowed', message: 'CONNECT is refused: mtls-proxy is not an open proxy' })
  })

  // One hook, callback style: on the path of every request, a promise per hook is measurable.
  app.addHook('onRequest', (request, reply, done) => {
    metrics.inFlight.inc()
    // Captured now: by 'close' the response may already be detached from its socket.
    const socket = request.raw.socket
    // On 'close' rather than Fastify's onResponse, which never fires for a watch the client ended.
    reply.raw.once('close', () => {
      metrics.inFlight.dec()
      record({
        method: request.method,
        url: request.url,
        status: reply.statusCode,
        duration: reply.elapsedTime / 1000,
        ...wireBytes(socket),
        ...(reply.raw.writableFinished ? {} : { aborted: true }),
        ...(request.failure ? { error: request.failure } : {}),
      }, request.id)
    })
    // originalUrl: the target before rewriteUrl turned an absolute-form target into a path.
    const refusal = admit(request.originalUrl, request.raw, 'request')
    if (!refusal) {
      continueIfAsked(request, reply)
      done()
      return
    }
    // Answered here: the request goes no further, so done() is not called.
    refuse(request, reply, refusal, closing)
  })

  // Every answer of our own (forwarded ones are hijacked and never pass here): a body still arriving is bounded.
  app.addHook('onSend', onSendDropUnreadBody)

  // exec, attach, cp and port-forward: Node hands `Connection: Upgrade` requests to this event, past Fastify.
  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => tunnels.handle(req, socket, head))

  app.setErrorHandler((err: Error & { statusCode?: number }, request, reply) => {
    const code = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500
    if (code === 500) request.log.error({ err }, 'unexpected error')
    return sendRefusal(reply, { code, reason: code === 500 ? 'InternalError' : 'BadRequest', message: err.message })
  })

  // The guard refused every method that is not forwarded, so what is left is a path with no route.
  app.setNotFoundHandler((request, reply) => sendRefusal(reply, { code: 404, reason: 'NotFound', message: `no such mtls-proxy endpoint: ${request.url}` }))

  const readyState = (): ReadyState => {
    const clientNotAfter = reloader.current.notAfter
    if (now() > clientNotAfter) return { ready: false, reason: `the client certificate expired on ${clientNotAfter.toISOString()}` }
    return readiness.state
  }
  const own: OwnEndpoints = {
    readyState,
    metrics,
    status: () => {
      const state = readyState()
      return {
        state: closing ? 'stopping' : state.ready ? 'ready' : 'not ready',
        reason: state.reason,
        upstream: config.upstream.origin + config.upstream.pathname.replace(/\/$/, ''),
        identity: clientIdentity(reloader.current),
        lastUpstreamSuccess: readiness.state.lastSuccess?.toISOString() ?? null,
        certificates: expiry.reports,
        lastReload: reloader.lastReload ?? null,
        openWatches: watches.size,
        openTunnels: tunnels.size,
      }
    },
  }
  registerOwnEndpoints(app, own)
  const statusApp = buildStatusApp(logger, own, config, guard)

  // Fastify would parse JSON and text bodies (and drop a charset); a proxy passes every body on as a stream.
  app.removeAllContentTypeParsers()
  await app.register(proxy, {
    upstream: config.upstream.href,
    httpMethods: FORWARDED_METHODS,
    // reply-from is registered by http-proxy but carries no traffic: it gets our pool, never used, instead of one of its own.
    undici: upstream as never,
    disableRequestLogging: true,
    handler: createForwarder({
      upstream,
      watches,
      closing: () => closing,
      clientBodyTimeoutMs: config.clientBodyTimeoutMs,
      onAnswer: (request, statusCode) => {
        readiness.recordSuccess()
        if (statusCode === 401) {
          const { current } = reloader
          request.log.warn({ url: request.url, identity: clientIdentity(current), notAfter: current.notAfter.toISOString() },
            'upstream answered 401 Unauthorized: the client certificate may have expired or been revoked (consoles can revoke a credential); get a new one')
        }
      },
      onFailure: (request, err) => {
        const failure = describeUpstreamError(err, config.upstream, upstream.serverName)
        request.failure = failure.message
        metrics.upstreamError(failure.cause)
        if (failure.cause !== 'timeout') readiness.recordFailure(failure.message)
        return failure
      },
    }),
  })

  app.addHook('onReady', async () => {
    readiness.start()
    reloader.start()
    expiry.start()
  })
  app.addHook('preClose', async () => {
    closing = true
    // Watches never finish on their own; end them so they do not hold shutdown for the whole grace period.
    watches.endAll()
    // Whatever is still running after the grace period is cut off, open tunnels included.
    const timer = setTimeout(() => {
      app.server.closeAllConnections()
      tunnels.destroyAll()
    }, config.shutdownTimeoutMs)
    timer.unref()
    app.server.once('close', () => clearTimeout(timer))
  })
  app.addHook('onClose', async () => {
    await statusApp.close()
    tunnels.destroyAll()
    expiry.stop()
    await reloader.stop()
    await readiness.stop()
    await upstream.close()
  })

  app.decorate('statusApp', statusApp)
  return app
}

/**
 * Node answers `Expect: 100-continue` itself unless told otherwise, before any hook has run: it
 * would invite the body of a request about to be refused. The guard sends it instead, once it admits.
 */
function expectContinueAfterTheGuard (server: Server): void {
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => server.emit('request', req, res))
}

function continueIfAsked (request: FastifyRequest, reply: FastifyReply): void {
  // Node passes on only Expect: 100-continue from HTTP/1.1 clients (others got 417 from it already).
  if (request.headers.expect !== undefined && request.raw.httpVersionMinor === 1) reply.raw.writeContinue()
}

/**
 * A refused client keeps no connection: it is closed after the answer, or, while the body is still
 * arriving, that is read within the linger bounds first (closing at once could reset the answer away).
 */
function refuse (request: FastifyRequest, reply: FastifyReply, refusal: Refusal, closing: boolean): void {
  if (closing || !bodyPending(request.raw)) reply.header('connection', 'close')
  sendRefusal(reply, refusal)
}

type OnSendDone = (err: null, payload: unknown) => void

function onSendDropUnreadBody (request: FastifyRequest, _reply: unknown, payload: unknown, done: OnSendDone): void {
  dropUnreadBody(request.raw)
  done(null, payload)
}

function portOf (server: { address(): AddressInfo | string | null }): number | undefined {
  const address = server.address()
  return typeof address === 'object' && address ? address.port : undefined
}

// Any Host a request can carry: kubelet probes and Prometheus send the pod IP they dialled.
const ANY = [/^/]

/**
 * A listener for kubelet probes and Prometheus: the /-/ endpoints and nothing else, never proxying.
 * Its share of the guard: no token (probes send none) and no path rules (it forwards nothing); the
 * browser checks always; the Host check where it listens on loopback.
 */
function buildStatusApp (logger: Logger, own: OwnEndpoints, config: Config, guard: GuardOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: quieter(logger),
    logController: new LogController({ disableRequestLogging: true }),
    schemaController: NO_SCHEMAS,
  })
  const host = config.statusAddress?.host ?? config.address
  const options: GuardOptions = {
    ...guard,
    acceptHosts: isLoopback(host) ? hostPatterns(config.acceptHosts, host) : ANY,
    tokenDigest: undefined,
    acceptPaths: ANY,
    rejectPaths: [],
    rejectMethods: [],
    listenPort: () => portOf(app.server),
    scheme: 'http',
    admitOwnOrigin: false,
  }
  app.addHook('onSend', onSendDropUnreadBody)
  expectContinueAfterTheGuard(app.server)
  app.addHook('onRequest', (request, reply, done) => {
    const refusal = checkRequest(request.originalUrl, request.raw, options, 'request')
    if (!refusal) {
      continueIfAsked(request, reply)
      done()
      return
    }
    refuse(request, reply, refusal, false)
  })
  registerOwnEndpoints(app as unknown as FastifyInstance, own)
  app.setNotFoundHandler((request, reply) => sendRefusal(reply, {
    code: 404, reason: 'NotFound', message: `the status listener serves only ${OWN_PATHS.join(', ')}; it forwards nothing`,
  }))
  return app as unknown as FastifyInstance
}
