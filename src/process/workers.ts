// --workers N: N processes serve one listening socket; node:cluster's primary accepts connections
// and hands them out in turn. The primary serves nothing itself: it starts the workers with the
// settings it read, replaces one that dies, passes SIGHUP on, stops them all on SIGTERM/SIGINT, and
// sums every worker's metrics for /-/metrics. One worker is the voice: only it logs what concerns
// the whole proxy (start-up, reloads, expiry, readiness), so N workers say a thing once.
import cluster, { type Worker } from 'node:cluster'
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import closeWithGrace from 'close-with-grace'
import type { Logger } from 'pino'
import { AggregatorRegistry, type Registry } from 'prom-client'
import { MAX_WORKERS, WORKER_ROLE_ENV as ROLE_ENV, type Config, type Settings } from '../settings/config.js'
import { SECRET_VARIABLES } from '../settings/options.js'
import { pinClusters, type Pins } from '../clusters/pins.js'
import { createLogger } from '../util/logger.js'

// From the primary to a worker, deleted once read (nothing the worker starts inherits them), with ROLE_ENV.
const SETTINGS_ENV = '_MTLS_PROXY_SETTINGS'

type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>
type Message =
  | { type: 'mtls-proxy:ready' }
  | { type: 'mtls-proxy:stop' }
  | { type: 'mtls-proxy:reload' }
  /** primary → worker: speak for the proxy from now on (the voice died) */
  | { type: 'mtls-proxy:voice' }
  /** worker → primary: a scrape wants every worker's metrics */
  | { type: 'mtls-proxy:metrics'; id: number }
  | { type: 'mtls-proxy:metrics-answer'; id: number; text?: string; error?: string }
  /** primary → worker: this worker's own metrics, please */
  | { type: 'mtls-proxy:own-metrics'; id: number }
  | { type: 'mtls-proxy:own-metrics-answer'; id: number; metrics: MetricsJson }

const isMessage = (m: unknown): m is Message => typeof (m as Message | undefined)?.type === 'string'

/** To a worker that may be dying: its channel may be closed before its exit is seen, and that is no error here. */
function tell (worker: Worker, m: Message): void {
  if (worker.isConnected()) worker.send(m, () => {})
}

/** How many workers `--workers auto` means: the cores this process may use, within its cgroup's CPU quota. */
export function cpuCount (): number {
  let quota = Infinity
  const read = (file: string) => { try { return readFileSync(file, 'utf8').trim() } catch { return undefined } }
  const v2 = read('/sys/fs/cgroup/cpu.max')?.split(' ')
  if (v2 && v2[0] !== 'max') quota = Number(v2[0]) / Number(v2[1])
  const v1 = Number(read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us'))
  if (v1 > 0) quota = Math.min(quota, v1 / Number(read('/sys/fs/cgroup/cpu/cpu.cfs_period_us')))
  const cores = Math.min(availableParallelism(), Number.isFinite(quota) && quota > 0 ? Math.ceil(quota) : Infinity)
  return Math.max(1, Math.min(cores, MAX_WORKERS))
}

/** What a worker knows of its place among the others. */
export interface WorkerLink {
  id: number
  /** how many workers serve */
  of: number
  /** what the primary read at start */
  settings: Settings
  warnings: string[]
  /** each cluster's context and server, as the primary found them at start */
  pins: Pins
  /** this worker logs for the whole proxy (it may become so later: onVoice) */
  voice: boolean
  onVoice(become: () => void): void
  /** serving: the primary may start the next worker */
  ready(): void
  /** the primary asks this worker to stop (or is gone); a stop asked earlier is passed on at once */
  onStop(stop: () => void): void
  /** SIGHUP reached the primary */
  onReload(reload: () => void): void
  /** this worker's registry, for the primary to sum */
  shareMetrics(registry: Registry): void
  /** every worker's metrics, summed by the primary */
  metrics(): Promise<string>
}

// A scrape waits this long for the primary, which itself gives the workers 5 s.
const METRICS_TIMEOUT_MS = 8_000

/** Run as a worker of another cluster (pm2's, say): serve as one plain process. */
export const underOtherCluster = (): boolean => cluster.isWorker

/** The link to the primary, in a worker this proxy's primary started; undefined anywhere else. */
export function workerLink (): WorkerLink | undefined {
  const self = cluster.worker
  const role = /^(voice|quiet),(\d+)$/.exec(process.env[ROLE_ENV] ?? '')
  if (!cluster.isWorker || !self || !role) return undefined
  const given = JSON.parse(process.env[SETTINGS_ENV] ?? '{}') as { settings: Settings; warnings: string[]; pins: Pins }
  delete process.env[ROLE_ENV]
  delete process.env[SETTINGS_ENV]
  // Ctrl-C and a hang-up reach the whole process group; the primary decides (SIGINT stops, SIGHUP
  // reloads) and tells each worker once. Without a listener either would end the worker at once.
  process.on('SIGINT', () => {})
  process.on('SIGHUP', () => {})
  let voice = role[1] === 'voice'
  let stopAsked = false
  let stop: (() => void) | undefined
  let reload = () => {}
  let becomeVoice = () => {}
  let shared: Registry | undefined
  let nextId = 0
  const pending = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void }>()
  const send = (m: Message) => { if (process.connected) process.send?.(m) }
  const stopNow = () => {
    stopAsked = true
    stop?.()
  }
  process.on('message', (m: unknown) => {
    if (!isMessage(m)) return
    if (m.type === 'mtls-proxy:stop') stopNow()
    if (m.type === 'mtls-proxy:reload') reload()
    if (m.type === 'mtls-proxy:voice' && !voice) {
      voice = true
      becomeVoice()
    }
    if (m.type === 'mtls-proxy:own-metrics' && shared) {
      void shared.getMetricsAsJSON().then((metrics) => send({ type: 'mtls-proxy:own-metrics-answer', id: m.id, metrics }))
    }
    if (m.type === 'mtls-proxy:metrics-answer') {
      const waiter = pending.get(m.id)
      pending.delete(m.id)
      if (m.text !== undefined) waiter?.resolve(m.text)
      else waiter?.reject(new Error(`the primary could not gather the workers' metrics: ${m.error ?? 'no answer'}`))
    }
  })
  // The primary is gone (killed outright): finish what is in flight and stop. Node's own handler,
  // which runs next, would otherwise exit at once; it leaves alone a worker marked as leaving.
  self.on('disconnect', () => {
    self.exitedAfterDisconnect = true
    stopNow()
  })
  return {
    id: self.id,
    of: Number(role[2]),
    settings: given.settings,
    warnings: given.warnings,
    pins: given.pins,
    get voice () { return voice },
    onVoice: (fn) => { becomeVoice = fn },
    ready: () => send({ type: 'mtls-proxy:ready' }),
    onStop: (fn) => {
      stop = fn
      if (stopAsked) fn()
    },
    onReload: (fn) => { reload = fn },
    shareMetrics: (registry) => { shared = registry },
    metrics () {
      const id = nextId++
      return new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id)
          reject(new Error(`the primary gave no metrics within ${METRICS_TIMEOUT_MS / 1000} s`))
        }, METRICS_TIMEOUT_MS)
        pending.set(id, {
          resolve: (text) => { clearTimeout(timer); resolve(text) },
          reject: (err) => { clearTimeout(timer); reject(err) },
        })
        send({ type: 'mtls-proxy:metrics', id })
      })
    },
  }
}

// Each serving worker gets this long to send its metrics; a scrape goes on without a late one.
const GATHER_TIMEOUT_MS = 5_000
// Each serving worker's metrics are fetched this often between scrapes too: a worker that dies takes
// at most this much of its counts with it (a dead process cannot be asked).
export const LAST_SEEN_MS = 5_000

/**
 * Sums the serving workers' metrics, as prom-client's AggregatorRegistry does, but asks only the
 * workers that serve (one still starting would keep every scrape waiting) and keeps the counts of
 * workers that died as last seen (at most LAST_SEEN_MS old), so no counter in the sum ever goes down.
 * Scrapes at the same time share one round of questions.
 */
class Gatherer {
  #nextId = 0
  #inFlight: Promise<string> | undefined
  readonly #waiting = new Map<number, { from: Set<Worker>; got: MetricsJson[]; done: () => void }>()
  readonly #last = new Map<Worker, MetricsJson>()
  #retired: Promise<MetricsJson> = Promise.resolve([])

  constructor (readonly serving: ReadonlySet<Worker>) {}

  all (): Promise<string> {
    this.#inFlight ??= this.#gather().finally(() => { this.#inFlight = undefined })
    return this.#inFlight
  }

  async #gather (): Promise<string> {
    const id = this.#nextId++
    const from = new Set([...this.serving].filter((w) => w.isConnected()))
    const got: MetricsJson[] = []
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, GATHER_TIMEOUT_MS)
      const done = () => { clearTimeout(timer); resolve() }
      this.#waiting.set(id, { from, got, done })
      for (const worker of from) tell(worker, { type: 'mtls-proxy:own-metrics', id })
      if (from.size === 0) done()
    })
    this.#waiting.delete(id)
    return AggregatorRegistry.aggregate([await this.#retired, ...got]).metrics()
  }

  /** Fetches every serving worker's metrics into what is kept of it, asked or not by a scrape. */
  refresh (): void {
    for (const worker of this.serving) tell(worker, { type: 'mtls-proxy:own-metrics', id: -1 })
  }

  answer (worker: Worker, id: number, metrics: MetricsJson): void {
    this.#last.set(worker, metrics)
    const waiting = this.#waiting.get(id)
    if (!waiting?.from.delete(worker)) return
    waiting.got.push(metrics)
    if (waiting.from.size === 0) waiting.done()
  }

  /** A worker is gone: no scrape waits for it, and its counts as last seen stay in the sum. */
  retire (worker: Worker): void {
    for (const waiting of this.#waiting.values()) if (waiting.from.delete(worker) && waiting.from.size === 0) waiting.done()
    const last = this.#last.get(worker)
    this.#last.delete(worker)
    if (!last) return
    // prom-client's types say an enum; the JSON holds its name
    const counts = last.filter((m) => ['counter', 'histogram'].includes(m.type as unknown as string))
    const before = this.#retired
    this.#retired = before.then((retired) => AggregatorRegistry.aggregate([retired, counts]).getMetricsAsJSON())
  }
}

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

/**
 * Runs `workers` workers until SIGTERM or SIGINT, then exits. The first starts alone: a mistake in
 * the settings is then said once, by it, and resolves with its exit code, as does a worker that
 * cannot start while none serves (the certificate files broke since).
 */
export async function supervise (
  command: { config: Config; settings: Settings; warnings: string[] }, workers: number, logger?: Logger
): Promise<number> {
  const { config } = command
  const log = logger ?? createLogger({ level: config.logLevel, pretty: process.stdout.isTTY === true, atomicWrites: true })
  // Read once, here: a worker started later, in the place of one that died, serves the same servers
  // whatever the kubeconfig says by then.
  const pins = await pinClusters(config)
  // The settings, key material included, reach a worker in SETTINGS_ENV alone, which it deletes once
  // read; the variables they came from are not passed on, so nothing a worker starts inherits them.
  const env = {
    ...Object.fromEntries(SECRET_VARIABLES.map((name) => [name, undefined])),
    [SETTINGS_ENV]: JSON.stringify({ settings: command.settings, warnings: command.warnings, pins }),
  }
  const serving = new Set<Worker>()
  const gather = new Gatherer(serving)
  const timers = new Set<NodeJS.Timeout>()
  let voice: Worker | undefined
  let stopping = false
  let failedWhileStopping = false
  let youngDeaths = 0
  let gaveUp: (code: number) => void = () => {}

  cluster.on('message', (worker, m: unknown) => {
    if (!isMessage(m)) return
    if (m.type === 'mtls-proxy:own-metrics-answer') gather.answer(worker, m.id, m.metrics)
    if (m.type !== 'mtls-proxy:metrics') return
    const answer = (a: { text?: string; error?: string }) => tell(worker, { type: 'mtls-proxy:metrics-answer', id: m.id, ...a })
    gather.all().then((text) => answer({ text }), (err: Error) => answer({ error: err.message }))
  })
  cluster.on('exit', (_worker, code) => { if (stopping && code !== 0) failedWhileStopping = true })

  /** The voice died or failed to start: the first serving worker speaks from now on. */
  const handOnVoice = () => {
    voice = [...serving][0]
    if (voice) tell(voice, { type: 'mtls-proxy:voice' })
  }

  /** Forks a worker; resolves once it serves, rejects with its exit code if it dies first. */
  const start = (asVoice: boolean) => new Promise<Worker>((resolve, reject) => {
    const worker = cluster.fork({ ...env, [ROLE_ENV]: `${asVoice ? 'voice' : 'quiet'},${workers}` })
    worker.on('error', (err) => log.debug({ err: err.message, pid: worker.process.pid }, 'channel to a worker failed'))
    if (asVoice) voice = worker
    const forkedAt = Date.now()
    const early = (code: number | null) => {
      if (voice === worker) handOnVoice()
      reject(new StartFailure(code || 1))
    }
    worker.once('exit', early)
    worker.on('message', (m: unknown) => {
      if (!isMessage(m) || m.type !== 'mtls-proxy:ready') return
      worker.off('exit', early)
      serving.add(worker)
      // A stop sent while it was loading reached no listener yet: again, now that it serves.
      if (stopping) tell(worker, { type: 'mtls-proxy:stop' })
      worker.once('exit', (code, signal) => {
        serving.delete(worker)
        gather.retire(worker)
        if (voice === worker) handOnVoice()
        if (stopping) return
        log.error({ pid: worker.process.pid, code, signal }, `worker ${worker.id} (pid ${worker.process.pid}) exited ` +
          `${signal ? `on ${signal}` : `with code ${code}`}`)
        replace(Date.now() - forkedAt)
      })
      resolve(worker)
    })
  })

  /** Starts another worker in the place of one that died, later the younger they die. */
  const replace = (lived: number) => {
    youngDeaths = lived > YOUNG_MS ? 0 : youngDeaths + 1
    const delay = Math.min(RESTART_DELAY_MS * 2 ** Math.max(0, youngDeaths - 1), MAX_RESTART_DELAY_MS)
    log.warn(`starting another worker in ${delay / 1000} s`)
    const timer = setTimeout(() => {
      timers.delete(timer)
      if (stopping) return
      const forkedAt = Date.now()
      start(voice === undefined).catch((err: unknown) => {
        const code = err instanceof StartFailure ? err.exitCode : 1
        if (serving.size > 0) return replace(Date.now() - forkedAt)
        log.error({ code }, `no worker serves and a new one could not start (exit code ${code}): stopping`)
        gaveUp(code)
      })
    }, delay)
    timers.add(timer)
  }

  const refresh = setInterval(() => gather.refresh(), LAST_SEEN_MS)
  refresh.unref()
  const stopAll = () => {
    stopping = true
    clearInterval(refresh)
    for (const timer of timers) clearTimeout(timer)
    for (const worker of Object.values(cluster.workers ?? {})) {
      if (worker?.isConnected()) tell(worker, { type: 'mtls-proxy:stop' })
      else worker?.kill('SIGTERM')
    }
  }
  /** Every worker gone, or killed once the grace time is over. */
  const allExited = () => new Promise<void>((resolve) => {
    const killAll = () => { for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGKILL') }
    const deadline = setTimeout(killAll, config.shutdownTimeoutMs + 5_000)
    const check = () => {
      if (Object.keys(cluster.workers ?? {}).length > 0) return
      clearTimeout(deadline)
      resolve()
    }
    cluster.on('exit', check)
    check()
  })
  const flush = () => new Promise<void>((resolve) => log.flush(() => resolve()))

  // SIGHUP: every serving worker reloads (the voice says so); one still starting reads the files anyway.
  process.on('SIGHUP', () => {
    for (const worker of serving) tell(worker, { type: 'mtls-proxy:reload' })
  })
  // SIGTERM or SIGINT: each worker stops as one process would, finishing what is in flight. A
  // second signal ends the primary at once; the workers, disconnected, still finish and stop.
  const graceful = { delay: config.shutdownTimeoutMs + 10_000, logger: log, skip: ['SIGHUP' as const, 'beforeExit' as const] }
  const { uninstall } = closeWithGrace(graceful, async ({ signal, err }) => {
    if (err) log.error({ err }, 'fatal error in the primary, stopping the workers')
    else log.info({ signal }, `${signal}: stopping ${Object.keys(cluster.workers ?? {}).length} workers`)
    stopAll()
    await allExited()
    log.info('stopped')
    await flush()
    if (failedWhileStopping) process.exit(1)
  })
  const stopped = (code: number) => {
    uninstall()
    stopAll()
    return allExited().then(flush).then(() => code)
  }
  const givenUp = new Promise<number>((resolve) => { gaveUp = (code) => resolve(stopped(code)) })

  // Stopping already (a signal during the start): no more workers, and close-with-grace ends the process.
  const never = new Promise<number>(() => {})
  try {
    await start(true)
    if (stopping) return never
    await Promise.all(Array.from({ length: workers - 1 }, () => start(false)))
    if (stopping) return never
  } catch (err) {
    if (stopping) return never
    return stopped(err instanceof StartFailure ? err.exitCode : 1)
  }
  const pids = [...serving].map((w) => w.process.pid)
  log.info({ workers, pids }, `${workers} worker processes share the listener`)
  return givenUp
}
