// One serving process: reads the credentials, builds the app, listens, and stops gracefully on a
// signal. The CLI runs it alone, or once in each worker under --workers (process/workers/).
import type { Server } from 'node:net'
import closeWithGrace from 'close-with-grace'
import type { Logger } from 'pino'
import { bracketed } from '../util/addresses.js'
import type { App } from '../app.js'
import type { Pins } from '../clusters/pins.js'
import { alsoSaying } from '../settings/load.js'
import { exposure } from '../settings/listening.js'
import type { Config } from '../settings/types.js'
import { clientIdentity } from '../credentials/bundle.js'
import { credentialNote, reloadedOf } from '../credentials/wording.js'
import type { CredentialBundle } from '../credentials/bundle.js'
import { portOf } from '../doors/listener.js'
import { createLogger } from '../util/logger.js'
import { checkUnixSocket, listenUnixSocket } from '../doors/unix-socket.js'
import { cannotListen, handOver, mainWhere, reserveListeners, statusWhere, type Reservation, type Reserved } from '../doors/reservation.js'
import { openProxy } from './open.js'
import type { WorkerLink } from './workers/worker.js'

/** Listens, or says in one line why it cannot (and closes the app, so nothing is left running). */
async function listenOrExplain (app: App, where: string, listen: () => Promise<unknown>): Promise<void> {
  try {
    await listen()
  } catch (err) {
    await app.close()
    throw cannotListen(where, err)
  }
}

/** What the user should know before the first request: who else can act as them. */
function warnAboutExposure (config: Config, bundle: CredentialBundle, logger: Logger): void {
  const identity = clientIdentity(bundle)
  const exposed = exposure(config, identity)
  if (exposed !== undefined) logger.warn({ address: config.address }, exposed)
  if (bundle.server.insecureSkipTlsVerify) {
    const by = config.credentials.insecureSkipTlsVerify ? '--insecure-skip-tls-verify' : 'the kubeconfig sets insecure-skip-tls-verify'
    logger.warn(`${by}: the API server's certificate is NOT verified; anyone between here and ${bundle.server.url.host} can read and answer every request made as ${identity}`)
  }
}

/** In a pod with no kubeconfig, the identity is the pod's own: said first, as the reason it is. */
function sayInCluster (config: Config, events: Logger): void {
  const account = config.credentials.serviceAccount
  if (!account) return
  events.info({ serviceAccount: account.folder },
    `no kubeconfig found, and in a pod (KUBERNETES_SERVICE_HOST is set): serving as the pod's service account (${account.folder}), as kubectl proxy does there; its token is read again whenever the kubelet replaces it`)
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
}

export interface ServeOptions {
  /** a command runs with the proxy (`-- COMMAND`): the caller owns SIGINT and SIGTERM and stops the proxy itself */
  forCommand?: boolean
  /** for the caller that owns the signals: aborted (its reason a signal's name), a start under way ends */
  stopStarting?: AbortSignal
  /** what the start fixes, worked out by the caller already (run mode writes the clusters' namespaces from it) */
  pins?: Pins
}

export async function serve (
  command: { config: Config; warnings: string[] }, worker?: WorkerLink, options: ServeOptions = {}
): Promise<Serving> {
  const { config } = command
  const { root, logger, events } = loggers(config, worker)
  for (const warning of command.warnings) events.warn(warning)
  sayInCluster(config, events)
  const hangup = reloadOnHangup(worker, events)
  const reserved = await takePlaces(config, worker).catch((err: unknown) => { throw alsoSaying(err, command.warnings) })
  const starting = stopWhileStarting(worker, options.stopStarting)
  const app = await openProxy(config, {
    logger, events, pins: worker?.pins ?? options.pins, metrics: { exposition: worker?.metrics }, stopStarting: starting.signal,
  })
    .catch((err: unknown) => {
      reserved?.close()
      throw alsoSaying(err, command.warnings)
    })
    .finally(() => starting.done())
  hangup.opened(app)
  worker?.shareMetrics(app.metrics.registry)
  warnAboutExposure(config, app.clusters.main.credentials.current, events)
  const listening = await listen(app, config, logger, reserved)
  const shutDown = async () => {
    await app.close()
    events.info('stopped')
    // Lines are written asynchronously; the process exits next, and none may be cut off.
    await new Promise<void>((resolve) => root.flush(() => resolve()))
  }
  const stop = options.forCommand ? shutDown : stopOnSignals(config, worker, logger, events, shutDown)
  announce(app, config, listening, worker, events)
  worker?.ready()
  return { url: listening.url, stop }
}

/** The process's logger; a worker's names it; `events` is silent in a worker that is not the voice, until it becomes it. */
function loggers (config: Config, worker: WorkerLink | undefined): { root: Logger; logger: Logger; events: Logger } {
  const out = config.logTo === 'stderr' ? process.stderr : process.stdout
  const root = createLogger({
    level: config.logLevel,
    fd: config.logTo === 'stderr' ? 2 : 1,
    pretty: out.isTTY === true,
    // Workers share one stdout: lines must reach it whole.
    ...(worker ? { atomicWrites: true } : {}),
  })
  if (!worker) return { root, logger: root, events: root }
  const logger = root.child({ worker: worker.id })
  const events = logger.child({}, { level: worker.voice ? config.logLevel : 'silent' })
  worker.onVoice(() => { events.level = config.logLevel })
  return { root, logger, events }
}

/**
 * SIGHUP is taken from the first moment, not once serving: with no listener it would end the process,
 * and reading the credentials may take a while (an exec plugin may run for a minute). Asked before the
 * proxy is open, every cluster's credentials are read again once it is.
 */
function reloadOnHangup (worker: WorkerLink | undefined, events: Logger): { opened: (app: App) => void } {
  let app: App | undefined
  let asked = false
  // Said as it runs, once the credentials are known: a certificate's files, or a token.
  const reload = (opened: App) => {
    events.info(`SIGHUP: reloading ${reloadedOf(opened.clusters.main.credentials.current).what}`)
    opened.clusters.reload('SIGHUP')
    void opened.callerToken?.reload('SIGHUP')
  }
  const hangup = () => {
    if (app) reload(app)
    else asked = true
  }
  if (worker) worker.onReload(hangup)
  else process.on('SIGHUP', hangup)
  return {
    opened: (opened) => {
      app = opened
      if (asked) reload(opened)
    },
  }
}

/**
 * An exec plugin may take a minute: a stop asked while the proxy opens ends it and the start,
 * leaving nothing running. The caller that owns the signals passes its own.
 */
function stopWhileStarting (worker: WorkerLink | undefined, given: AbortSignal | undefined): { signal: AbortSignal; done: () => void } {
  if (given) return { signal: given, done: () => {} }
  const controller = new AbortController()
  const stop = (signal: NodeJS.Signals) => { if (!controller.signal.aborted) controller.abort(signal) }
  if (worker) {
    worker.onStop(() => stop('SIGTERM'))
    return { signal: controller.signal, done: () => {} }
  }
  // (on, not once: a second signal while the plugin is ended must not end the process before it)
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, stop)
  return { signal: controller.signal, done: () => { for (const signal of ['SIGTERM', 'SIGINT'] as const) process.off(signal, stop) } }
}

interface Listening {
  /** where the main listener is, as a client would dial it */
  url: string
  /** the --status-address listener's */
  status: string | undefined
}

/**
 * Where it will listen, taken (or, for a Unix socket, checked) before the slow part of the start, so
 * a port in use is one line at once, not after the credentials are read and the upstream is probed.
 * A worker listens through its primary, which checked the ports before starting any worker.
 */
async function takePlaces (config: Config, worker: WorkerLink | undefined): Promise<Reserved | undefined> {
  if (worker) return undefined
  if (config.unixSocket) await checkUnixSocket(config.unixSocket)
  return reserveListeners(config)
}

/**
 * Listens where a reservation was, its waiting connections handed over once listening. The server is
 * made ready first (its hooks start the clusters' parts) while the reservation still holds the
 * address: it is free only for the moment of the bind, not for another local user to take meanwhile.
 */
async function listenInPlace (
  app: App, where: string, reservation: Reservation | undefined,
  ready: () => Promise<unknown>, listen: () => Promise<unknown>, server: () => Server
): Promise<void> {
  await listenOrExplain(app, where, ready)
  const waiting = reservation?.release() ?? []
  try {
    await listenOrExplain(app, where, listen)
  } catch (err) {
    for (const socket of waiting) socket.destroy()
    throw err
  }
  handOver(waiting, server())
}

/** The main listener (a TCP port or a Unix socket) and the status listener, or one line saying why not. */
async function listen (app: App, config: Config, logger: Logger, reserved: Reserved | undefined): Promise<Listening> {
  const { unixSocket, statusAddress } = config
  // A failure to listen on one frees the other too.
  try {
    await listenEach(app, config, logger, reserved)
  } catch (err) {
    reserved?.close()
    throw err
  }
  const port = portOf(app.server) ?? config.port
  return {
    url: unixSocket ? `unix:${unixSocket}` : `${config.https ? 'https' : 'http'}://${bracketed(config.address)}:${port}`,
    status: statusAddress ? `http://${bracketed(statusAddress.host)}:${portOf(app.statusApp.server) ?? statusAddress.port}` : undefined,
  }
}

async function listenEach (app: App, config: Config, logger: Logger, reserved: Reserved | undefined): Promise<void> {
  const { unixSocket, statusAddress } = config
  if (unixSocket) {
    await listenOrExplain(app, unixSocket, () => listenUnixSocket(app, unixSocket, (reason) => {
      logger.error({ unixSocket }, reason)
      app.clusters.main.readiness.markBroken(reason)
    }))
  } else {
    await listenInPlace(app, mainWhere(config), reserved?.main,
      async () => { await app.ready() }, () => app.listen({ host: config.address, port: config.port }), () => app.server)
  }
  if (statusAddress) {
    const { statusApp } = app
    await listenInPlace(app, statusWhere(statusAddress), reserved?.status, async () => { await statusApp.ready() },
      () => statusApp.listen({ host: statusAddress.host, port: statusAddress.port }), () => statusApp.server)
  }
}

/**
 * SIGTERM and SIGINT drain and stop, through close-with-grace; returns the stop a caller may ask for.
 * SIGHUP reloads certificates (close-with-grace would treat it as a stop). A worker leaves SIGINT
 * (Ctrl-C reaches the whole process group) to the primary, which stops the workers itself, and takes
 * SIGTERM as a stop like the primary's: systemd signals the whole group, so both come, in either
 * order, and close-with-grace would take the second for "exit now".
 */
function stopOnSignals (
  config: Config, worker: WorkerLink | undefined, logger: Logger, events: Logger, shutDown: () => Promise<void>
): () => Promise<void> {
  const skip = worker ? ['SIGHUP' as const, 'SIGINT' as const, 'SIGTERM' as const] : ['SIGHUP' as const]
  // close-with-grace calls this as it begins closing, however that began; a stop asked for after is none.
  let closing = false
  const grace = closeWithGrace({ delay: config.shutdownTimeoutMs + 5_000, logger, skip },
    async ({ signal, err, manual }) => {
      closing = true
      if (err) logger.error({ err }, 'fatal error, shutting down')
      else {
        events.info({ signal: signal ?? (manual ? 'stop' : undefined) }, `${signal ?? 'asked to stop'}: shutting down (waiting up to ${config.shutdownTimeoutMs / 1000} s for requests in flight)`)
      }
      await shutDown()
    })
  const stopOnce = () => { if (!closing) void grace.close() }
  worker?.onStop(stopOnce)
  if (worker) process.on('SIGTERM', stopOnce)
  return async () => { stopOnce() }
}

/** The line that says the proxy serves: where, forwarding where, as whom, and its clusters. */
function announce (app: App, config: Config, listening: Listening, worker: WorkerLink | undefined, events: Logger): void {
  const { credentials } = app.clusters.main
  const identity = clientIdentity(credentials.current)
  const upstream = credentials.current.server.url
  const client = credentials.current.clientCertificate
  const credential = credentialNote(credentials.current)
  const names = app.clusters.multi ? app.clusters.all.map((c) => c.name) : []
  const { url: listen, status } = listening
  events.info({
    listen,
    ...(status ? { status } : {}),
    upstream: upstream.href,
    identity,
    credential,
    ...(client ? { certificateNotAfter: new Date(client.validTo).toISOString() } : {}),
    credentialsExpire: credentials.current.expiresAt?.toISOString(),
    ...(worker ? { workers: worker.of } : {}),
    ...(app.clusters.multi ? { clusters: names, cluster: app.clusters.default.name } : {}),
  }, `serving ${listen}, forwarding to ${upstream.origin} as ${identity} (${credential})${worker ? ` (${worker.of} worker processes)` : ''}` +
    (app.clusters.multi ? `; ${names.length} clusters under ${listen}/clusters/NAME/ (this one, '${app.clusters.default.name}', also at /)` : ''))
}
