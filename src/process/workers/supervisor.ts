// --workers N: N processes serve one listening socket; node:cluster's primary accepts connections
// and hands them out in turn. The primary serves nothing itself: it starts the workers with the
// settings it read, replaces one that dies, passes SIGHUP on, stops them all on SIGTERM/SIGINT, and
// sums every worker's metrics for /-/metrics. One worker is the voice: only it logs what concerns
// the whole proxy (start-up, reloads, expiry, readiness), so N workers say a thing once.
import cluster, { type Worker } from 'node:cluster'
import closeWithGrace from 'close-with-grace'
import type { Logger } from 'pino'
import { WORKER_ROLE_ENV } from '../child-environment.js'
import type { Config, Settings } from '../../settings/types.js'
import { SECRET_VARIABLES } from '../../settings/options.js'
import { pinClusters, type Pins } from '../../clusters/pins.js'
import { createLogger } from '../../util/logger.js'
import { reserveListeners } from '../../doors/reservation.js'
import { Gatherer, LAST_SEEN_MS } from './gatherer.js'
import { isMessage, roleValue, SETTINGS_ENV, tell, type Given, type Message } from './protocol.js'

/** A worker died before it served: what it said on stderr is the reason, its exit code ours. */
class StartFailure extends Error {
  constructor (readonly exitCode: number) {
    super(`worker exited with code ${exitCode} before serving`)
  }
}

// A worker that dies is replaced after 1 s, doubling (to 30 s) while replacements die young.
const RESTART_DELAY_MS = 1_000
const MAX_RESTART_DELAY_MS = 30_000
// A worker that served this long died of something other than how it starts.
const YOUNG_MS = 10_000

// Stopping already (a signal during the start): no more workers, and close-with-grace ends the process.
const never = new Promise<number>(() => {})

export interface SupervisedCommand {
  config: Config
  settings: Settings
  warnings: string[]
}

/**
 * Runs `workers` workers until SIGTERM or SIGINT, then exits. The first starts alone: a mistake in
 * the settings is then said once, by it, and resolves with its exit code, as does a worker that
 * cannot start while none serves (the certificate files broke since).
 */
export async function supervise (command: SupervisedCommand, workers: number, logger?: Logger): Promise<number> {
  const { config } = command
  const log = logger ?? createLogger({ level: config.logLevel, pretty: process.stdout.isTTY === true, atomicWrites: true })
  // A port in use is said now, in one line, before any worker reads credentials. Freed again at once:
  // the workers listen through node:cluster, which binds the port here when the first one listens.
  ;(await reserveListeners(config)).close()
  // Read once, here: a worker started later, in the place of one that died, serves the same servers
  // whatever the kubeconfig says by then.
  const pins = await pinClusters(config)
  return new Supervisor(command, workers, pins, log).run()
}

/** The primary: its workers, which of them serve and speak, and whether it is stopping. */
class Supervisor {
  readonly #config: Config
  readonly #workers: number
  readonly #log: Logger
  /** what every worker is started with, besides its role */
  readonly #env: NodeJS.ProcessEnv
  readonly #serving = new Set<Worker>()
  readonly #gatherer = new Gatherer(this.#serving)
  /** replacements waiting for their delay */
  readonly #timers = new Set<NodeJS.Timeout>()
  #refresh: NodeJS.Timeout | undefined
  #voice: Worker | undefined
  #stopping = false
  #failedWhileStopping = false
  #youngDeaths = 0
  #gaveUp: (code: number) => void = () => {}
  #uninstall = () => {}

  constructor (command: SupervisedCommand, workers: number, pins: Pins, log: Logger) {
    this.#config = command.config
    this.#workers = workers
    this.#log = log
    // The settings, key material included, reach a worker in SETTINGS_ENV alone, which it deletes once
    // read; the variables they came from are not passed on, so nothing a worker starts inherits them.
    const given: Given = { settings: command.settings, warnings: command.warnings, pins }
    this.#env = { ...Object.fromEntries(SECRET_VARIABLES.map((name) => [name, undefined])), [SETTINGS_ENV]: JSON.stringify(given) }
  }

  /** Resolves with the exit code when the workers could not start, or stopped after one could not be replaced. */
  async run (): Promise<number> {
    cluster.on('message', (worker, m: unknown) => { if (isMessage(m)) this.#heard(worker, m) })
    cluster.on('exit', (_worker, code) => { if (this.#stopping && code !== 0) this.#failedWhileStopping = true })
    this.#refresh = setInterval(() => this.#gatherer.refresh(), LAST_SEEN_MS)
    this.#refresh.unref()
    this.#passReloads()
    this.#stopOnSignal()
    const givenUp = new Promise<number>((resolve) => { this.#gaveUp = (code) => resolve(this.#stopped(code)) })
    const started = await this.#startAll()
    if (started === 'stopping') return never
    return started === 'serving' ? givenUp : this.#stopped(started)
  }

  /**
   * The first worker alone, then the rest at once: 'serving' when all serve, the exit code of one that
   * died first, or 'stopping' when a signal came meanwhile (close-with-grace then ends the process).
   */
  async #startAll (): Promise<'serving' | 'stopping' | number> {
    try {
      await this.#start(true)
      if (this.#stopping) return 'stopping'
      await Promise.all(Array.from({ length: this.#workers - 1 }, () => this.#start(false)))
      if (this.#stopping) return 'stopping'
    } catch (err) {
      if (this.#stopping) return 'stopping'
      return err instanceof StartFailure ? err.exitCode : 1
    }
    const pids = [...this.#serving].map((w) => w.process.pid)
    this.#log.info({ workers: this.#workers, pids }, `${this.#workers} worker processes share the listener`)
    return 'serving'
  }

  /** A worker's scrape asks for every worker's metrics; a worker answers with its own. */
  #heard (worker: Worker, m: Message): void {
    if (m.type === 'mtls-proxy:own-metrics-answer') this.#gatherer.answer(worker, m.id, m.metrics)
    if (m.type !== 'mtls-proxy:metrics') return
    const answer = (a: { text?: string; error?: string }) => tell(worker, { type: 'mtls-proxy:metrics-answer', id: m.id, ...a })
    this.#gatherer.all().then((text) => answer({ text }), (err: Error) => answer({ error: err.message }))
  }

  /** Forks a worker; resolves once it serves, rejects with its exit code if it dies first. */
  #start (asVoice: boolean): Promise<Worker> {
    return new Promise<Worker>((resolve, reject) => {
      const worker = cluster.fork({ ...this.#env, [WORKER_ROLE_ENV]: roleValue({ voice: asVoice, of: this.#workers }) })
      worker.on('error', (err) => this.#log.debug({ err: err.message, pid: worker.process.pid }, 'channel to a worker failed'))
      if (asVoice) this.#voice = worker
      const forkedAt = Date.now()
      const early = (code: number | null) => {
        if (this.#voice === worker) this.#handOnVoice()
        reject(new StartFailure(code || 1))
      }
      worker.once('exit', early)
      worker.on('message', (m: unknown) => {
        if (!isMessage(m) || m.type !== 'mtls-proxy:ready') return
        worker.off('exit', early)
        this.#serves(worker, forkedAt)
        resolve(worker)
      })
    })
  }

  /** A worker serves: it may be asked for metrics and to stop, and is replaced when it dies. */
  #serves (worker: Worker, forkedAt: number): void {
    this.#serving.add(worker)
    // A stop sent while it was loading reached no listener yet: again, now that it serves.
    if (this.#stopping) tell(worker, { type: 'mtls-proxy:stop' })
    worker.once('exit', (code, signal) => {
      this.#serving.delete(worker)
      this.#gatherer.retire(worker)
      if (this.#voice === worker) this.#handOnVoice()
      if (this.#stopping) return
      this.#log.error({ pid: worker.process.pid, code, signal }, `worker ${worker.id} (pid ${worker.process.pid}) exited ${signal ? `on ${signal}` : `with code ${code}`}`)
      this.#replace(Date.now() - forkedAt)
    })
  }

  /** The voice died or failed to start: the first serving worker speaks from now on. */
  #handOnVoice (): void {
    this.#voice = [...this.#serving][0]
    if (this.#voice) tell(this.#voice, { type: 'mtls-proxy:voice' })
  }

  /** Starts another worker in the place of one that died, later the younger they die. */
  #replace (lived: number): void {
    this.#youngDeaths = lived > YOUNG_MS ? 0 : this.#youngDeaths + 1
    const delay = Math.min(RESTART_DELAY_MS * 2 ** Math.max(0, this.#youngDeaths - 1), MAX_RESTART_DELAY_MS)
    this.#log.warn(`starting another worker in ${delay / 1000} s`)
    const timer = setTimeout(() => {
      this.#timers.delete(timer)
      if (!this.#stopping) this.#startReplacement()
    }, delay)
    this.#timers.add(timer)
  }

  /** A replacement that dies before serving is replaced in turn, unless none serves: then the primary gives up. */
  #startReplacement (): void {
    const forkedAt = Date.now()
    this.#start(this.#voice === undefined).catch((err: unknown) => {
      const code = err instanceof StartFailure ? err.exitCode : 1
      if (this.#serving.size > 0) return this.#replace(Date.now() - forkedAt)
      this.#log.error({ code }, `no worker serves and a new one could not start (exit code ${code}): stopping`)
      this.#gaveUp(code)
    })
  }

  /** SIGHUP: every serving worker reloads (the voice says so); one still starting reads the files anyway. */
  #passReloads (): void {
    process.on('SIGHUP', () => {
      for (const worker of this.#serving) tell(worker, { type: 'mtls-proxy:reload' })
    })
  }

  /**
   * SIGTERM or SIGINT: each worker stops as one process would, finishing what is in flight. A
   * second signal ends the primary at once; the workers, disconnected, still finish and stop.
   */
  #stopOnSignal (): void {
    const log = this.#log
    const graceful = { delay: this.#config.shutdownTimeoutMs + 10_000, logger: log, skip: ['SIGHUP' as const, 'beforeExit' as const] }
    const { uninstall } = closeWithGrace(graceful, async ({ signal, err }) => {
      if (err) log.error({ err }, 'fatal error in the primary, stopping the workers')
      else log.info({ signal }, `${signal}: stopping ${Object.keys(cluster.workers ?? {}).length} workers`)
      this.#stopAll()
      await this.#allExited()
      log.info('stopped')
      await this.#flush()
      if (this.#failedWhileStopping) process.exit(1)
    })
    this.#uninstall = uninstall
  }

  /** Stopping without a signal (the workers could not start, or be replaced): resolves with `code` once all are gone. */
  #stopped (code: number): Promise<number> {
    this.#uninstall()
    this.#stopAll()
    return this.#allExited().then(() => this.#flush()).then(() => code)
  }

  #stopAll (): void {
    this.#stopping = true
    clearInterval(this.#refresh)
    for (const timer of this.#timers) clearTimeout(timer)
    for (const worker of Object.values(cluster.workers ?? {})) {
      if (worker?.isConnected()) tell(worker, { type: 'mtls-proxy:stop' })
      else worker?.kill('SIGTERM')
    }
  }

  /** Every worker gone, or killed once the grace time is over. */
  #allExited (): Promise<void> {
    return new Promise<void>((resolve) => {
      const killAll = () => { for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGKILL') }
      const deadline = setTimeout(killAll, this.#config.shutdownTimeoutMs + 5_000)
      const check = () => {
        if (Object.keys(cluster.workers ?? {}).length > 0) return
        clearTimeout(deadline)
        resolve()
      }
      cluster.on('exit', check)
      check()
    })
  }

  #flush (): Promise<void> {
    return new Promise<void>((resolve) => this.#log.flush(() => resolve()))
  }
}
