// One serving process: reads the credentials, builds the app, listens, and stops gracefully on a
// signal. The CLI runs it alone, or once in each worker under --workers (process/workers.ts).
import { setTimeout as delay } from 'node:timers/promises'
import closeWithGrace from 'close-with-grace'
import type { Logger } from 'pino'
import { bracketed, isLoopback } from '../util/addresses.js'
import { buildApp, type App } from '../app.js'
import { alsoSaying, type Config } from '../settings/config.js'
import { clientIdentity } from '../credentials/bundle.js'
import { clusterDefinitions } from '../clusters/definitions.js'
import { pinClusters, pinnedSpec } from '../clusters/pins.js'
import { fileSetSource } from '../credentials/source.js'
import { openCredentialStore, type CredentialStore } from '../credentials/store.js'
import { StoppedWhileStarting, UsageError } from '../util/errors.js'
import { portOf } from '../doors/servers.js'
import { describeUpstreamError } from '../upstream/failures.js'
import { createLogger } from '../util/logger.js'
import { listenUnixSocket } from '../doors/unix-socket.js'
import type { WorkerLink } from './workers.js'

const LISTEN_ERRORS: Record<string, string> = {
  EADDRINUSE: 'address already in use (is another proxy running? choose another --port)',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'this machine has no such address',
}

/** Listens, or says in one line why it cannot (and closes the app, so nothing is left running). */
async function listenOrExplain (app: App, where: string, listen: () => Promise<unknown>): Promise<void> {
  try {
    await listen()
  } catch (err) {
    await app.close()
    if (err instanceof UsageError) throw err
    const code = (err as NodeJS.ErrnoException).code ?? ''
    throw new UsageError(`cannot listen on ${where}: ${LISTEN_ERRORS[code] ?? (err as Error).message}`)
  }
}

// Listening waits for the first probe's handshake, then at most this long for its answer: an
// upstream slow to answer is for readiness to report, not a reason to keep the port closed.
const ANSWER_WAIT_MS = 1_000

/**
 * The first readiness probe, before serving: a server that --cacert does not vouch for, or whose
 * name does not match, is a configuration mistake; one that is merely unreachable is not: a sidecar
 * may start before the network does, so the proxy serves, not ready, and keeps trying. The probe's
 * connection stays pooled, so the first request makes no handshake of its own.
 */
async function checkUpstream (app: App, connectTimeoutMs: number, logger: Logger): Promise<void> {
  const timers = new AbortController()
  let handshake = false
  const patience = Promise.race([
    app.upstream.nextHandshake().then(() => {
      handshake = true
      return delay(ANSWER_WAIT_MS, undefined, { signal: timers.signal })
    }),
    // (the pool's own connect timeout normally ends the probe first)
    delay(connectTimeoutMs + ANSWER_WAIT_MS, undefined, { signal: timers.signal }),
  ]).catch(() => {})
  const outcome = await app.health.probeFirst(patience)
  timers.abort()
  if (!outcome) {
    if (!handshake) warnNotReachable(app, logger, `no TLS handshake within ${connectTimeoutMs / 1000} s (--connect-timeout)`)
    return
  }
  const { error, failure } = outcome
  if (error === undefined) return
  const described = describeUpstreamError(error, app.upstream)
  if (described.misconfigured) {
    await app.close()
    throw new UsageError(described.message)
  }
  warnNotReachable(app, logger, failure!)
}

function warnNotReachable (app: App, logger: Logger, reason: string): void {
  logger.warn({ upstream: app.upstream.origin, reason }, `upstream not reachable yet (${reason}); serving anyway, not ready until it is`)
}

/** What the user should know before the first request: who else can act as them. */
function warnAboutExposure (config: Config, identity: string, upstreamHost: string, insecure: boolean, logger: Logger): void {
  if (!config.unixSocket && !isLoopback(config.address)) {
    logger.warn({ address: config.address }, `listening on non-loopback address ${config.address}: anyone who can reach it acts as ` +
      `${identity}`)
    if (config.callerToken !== undefined && !config.https) {
      logger.warn('callers send the --token-file token in clear text over the network, and kubectl will not send it over http:// at all: ' +
        'add --listen-cert and --listen-key to serve HTTPS')
    }
  }
  if (insecure) {
    const by = config.credentials.insecureSkipTlsVerify ? '--insecure-skip-tls-verify' : 'the kubeconfig sets insecure-skip-tls-verify'
    logger.warn(`${by}: the API server's certificate is NOT verified; anyone between here and ${upstreamHost} ` +
      `can read and answer every request made as ${identity}`)
  }
}

/**
 * Serves until stopped. Alone, it is the proxy; as a worker (`worker` given), it logs its requests,
 * leaves what concerns the whole proxy to the voice worker, and stops when the primary says so.
 */
export interface Serving {
  /** where it listens, as a client would dial it */
  url: string
  /** drains and stops (as SIGTERM would), the log flushed */
  stop: () => Promise<void>
  /** with several clusters, every cluster's name (each served under /clusters/NAME/); else none */
  clusters: string[]
  /** the default cluster's name (served at / too) */
  defaultCluster: string
}

export interface ServeOptions {
  /** a command runs with the proxy (`-- COMMAND`): the caller owns SIGINT and SIGTERM and stops the proxy itself */
  forCommand?: boolean
  /** for the caller that owns the signals: aborted (its reason a signal's name), a start under way ends */
  stopStarting?: AbortSignal
}

export async function serve (
  command: { config: Config; warnings: string[] }, worker?: WorkerLink, options: ServeOptions = {}
): Promise<Serving> {
  const { config } = command
  const out = config.logTo === 'stderr' ? process.stderr : process.stdout
  const root = createLogger({
    level: config.logLevel,
    fd: config.logTo === 'stderr' ? 2 : 1,
    pretty: out.isTTY === true,
    // Workers share one stdout: lines must reach it whole.
    ...(worker ? { atomicWrites: true } : {}),
  })
  const logger = worker ? root.child({ worker: worker.id }) : root
  // A worker that is not the voice keeps quiet about the proxy as a whole, until it becomes the voice.
  const events = !worker ? logger : logger.child({}, { level: worker.voice ? config.logLevel : 'silent' })
  worker?.onVoice(() => { events.level = config.logLevel })
  for (const warning of command.warnings) events.warn(warning)
  // SIGHUP is taken from the first moment, not once serving: with no listener it would end the
  // process, and reading the credentials may take a while (an exec plugin may run for a minute).
  const starting: { store?: CredentialStore; app?: App; reloadAsked: boolean } = { reloadAsked: false }
  const reload = () => {
    events.info('SIGHUP: reloading certificates')
    // Every open cluster's; still reading the default's: once read, they are read again.
    if (starting.app) {
      starting.app.clusters.reload('SIGHUP')
      void starting.app.callerToken?.reload('SIGHUP')
    } else if (starting.store) void starting.store.reload('SIGHUP')
    else starting.reloadAsked = true
  }
  if (worker) worker.onReload(reload)
  else process.on('SIGHUP', reload)
  // What this start fixes for its life: each cluster's context and server (a worker is handed the primary's).
  const pins = worker?.pins ?? await pinClusters(config).catch((err: unknown) => { throw alsoSaying(err, command.warnings) })
  for (const warning of pins.warnings) events.warn(warning)
  // The credentials are read now, the kubeconfig included: its mistakes get the same hint.
  const pin = pins.clusters[pins.name]
  const source = fileSetSource(pinnedSpec(config.credentials, pin), { logger: events })
  // An exec plugin may take a minute: a stop asked meanwhile ends it and the start, leaving nothing running.
  let stopAsked: NodeJS.Signals | undefined
  const stopStarting = (signal: NodeJS.Signals) => {
    stopAsked ??= signal
    void source.close()
  }
  const onSignal = (signal: NodeJS.Signals) => stopStarting(signal)
  const onAbort = () => stopStarting(options.stopStarting!.reason as NodeJS.Signals)
  if (worker) worker.onStop(() => stopStarting('SIGTERM'))
  else if (options.stopStarting) options.stopStarting.addEventListener('abort', onAbort, { once: true })
  // (on, not once: a second signal while the plugin is ended must not end the process before it)
  else for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, onSignal)
  const credentials = await openCredentialStore(source, { logger: events, ...(pin?.server ? { bound: pin.server } : {}) })
    .catch((err: unknown) => { throw stopAsked ? new StoppedWhileStarting(stopAsked) : alsoSaying(err, command.warnings) })
    .finally(() => {
      options.stopStarting?.removeEventListener('abort', onAbort)
      for (const signal of ['SIGTERM', 'SIGINT'] as const) process.off(signal, onSignal)
    })
  if (stopAsked) {
    await credentials.close()
    throw new StoppedWhileStarting(stopAsked)
  }
  starting.store = credentials
  if (starting.reloadAsked) void credentials.reload('SIGHUP')
  const identity = clientIdentity(credentials.current)
  const upstream = credentials.current.server.url
  warnAboutExposure(config, identity, upstream.host, credentials.current.server.insecureSkipTlsVerify, events)
  const app = await buildApp(config, {
    logger,
    events,
    credentials,
    clusterName: pins.name,
    clusters: clusterDefinitions(config, pins, events),
    metrics: { exposition: worker?.metrics },
  }).catch(async (err: unknown) => {
    await credentials.close()
    throw alsoSaying(err, command.warnings)
  })
  starting.app = app
  worker?.shareMetrics(app.metrics.registry)
  await checkUpstream(app, config.connectTimeoutMs, events)
  const { unixSocket, statusAddress } = config
  if (unixSocket) {
    await listenOrExplain(app, unixSocket, () => listenUnixSocket(app, unixSocket, (reason) => {
      logger.error({ unixSocket }, reason)
      app.health.markBroken(reason)
    }))
  } else {
    await listenOrExplain(app, `${bracketed(config.address)}:${config.port}`, () => app.listen({ host: config.address, port: config.port }))
  }
  if (statusAddress) {
    await listenOrExplain(app, `--status-address ${bracketed(statusAddress.host)}:${statusAddress.port}`,
      () => app.statusApp.listen({ host: statusAddress.host, port: statusAddress.port }))
  }
  const shutDown = async () => {
    await app.close()
    events.info('stopped')
    // Lines are written asynchronously; the process exits next, and none may be cut off.
    await new Promise<void>((resolve) => root.flush(() => resolve()))
  }
  let stop = shutDown
  if (!options.forCommand) {
    // SIGHUP reloads certificates (close-with-grace would treat it as a stop). A worker leaves SIGINT
    // (Ctrl-C reaches the whole process group) to the primary, which stops the workers itself, and
    // takes SIGTERM as a stop like the primary's: systemd signals the whole group, so both come, in
    // either order, and close-with-grace would take the second for "exit now".
    const skip = worker ? ['SIGHUP' as const, 'SIGINT' as const, 'SIGTERM' as const] : ['SIGHUP' as const]
    const { close } = closeWithGrace({ delay: config.shutdownTimeoutMs + 5_000, logger, skip },
      async ({ signal, err, manual }) => {
        if (err) logger.error({ err }, 'fatal error, shutting down')
        else {
          events.info({ signal: signal ?? (manual ? 'stop' : undefined) }, `${signal ?? 'asked to stop'}: shutting down (waiting up to ` +
            `${config.shutdownTimeoutMs / 1000} s for requests in flight)`)
        }
        await shutDown()
      })
    const stopOnce = () => { if (!(closeWithGrace as unknown as { closing: boolean }).closing) void close() }
    worker?.onStop(stopOnce)
    if (worker) process.on('SIGTERM', stopOnce)
    stop = async () => { stopOnce() }
  }
  const port = portOf(app.server) ?? config.port
  const names = app.clusters.multi ? app.clusters.all.map((c) => c.name) : []
  const client = credentials.current.clientCertificate
  const listen = unixSocket ? `unix:${unixSocket}` : `${config.https ? 'https' : 'http'}://${bracketed(config.address)}:${port}`
  const status = statusAddress ? `http://${bracketed(statusAddress.host)}:${portOf(app.statusApp.server) ?? statusAddress.port}` : undefined
  events.info({
    listen,
    ...(status ? { status } : {}),
    upstream: upstream.href,
    identity,
    ...(client ? { certificateNotAfter: new Date(client.validTo).toISOString() } : {}),
    credentialsExpire: credentials.current.expiresAt?.toISOString(),
    ...(worker ? { workers: worker.of } : {}),
    ...(app.clusters.multi ? { clusters: names, cluster: app.clusters.default.name } : {}),
  }, `serving ${listen}, forwarding to ${upstream.origin} as ${identity}${worker ? ` (${worker.of} worker processes)` : ''}` +
    (app.clusters.multi
      ? `; ${names.length} clusters under ${listen}/clusters/NAME/ (this one, '${app.clusters.default.name}', also at /)`
      : ''))
  worker?.ready()
  return { url: listen, stop, clusters: names, defaultCluster: app.clusters.default.name }
}
