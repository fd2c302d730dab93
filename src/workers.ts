// --workers N: N processes serve one listening socket; node:cluster's primary accepts connections
// and hands them out in turn. The primary serves nothing itself: it starts the workers, replaces one
// that dies, passes SIGHUP on, stops them all on SIGTERM/SIGINT, and sums every worker's metrics
// for /-/metrics (prom-client's AggregatorRegistry). One worker is the voice: only it logs what
// concerns the whole proxy (start-up, reloads, expiry, readiness), so N workers say a thing once.
import cluster, { type Worker } from 'node:cluster'
import closeWithGrace from 'close-with-grace'
import type { Logger } from 'pino'
import { AggregatorRegistry, type Registry } from 'prom-client'
import type { Config } from './config.js'
import { createLogger } from './logger.js'

// A worker's place, from the primary: outside MTLS_PROXY_*, which are settings.
const ROLE_ENV = '_MTLS_PROXY_WORKER'

type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>
type Message =
  | { type: 'mtls-proxy:ready' }
  | { type: 'mtls-proxy:stop' }
  /** worker → primary: a scrape wants every worker's metrics */
  | { type: 'mtls-proxy:metrics'; id: number }
  | { type: 'mtls-proxy:metrics-answer'; id: number; text?: string; error?: string }
  /** primary → worker: this worker's own metrics, please */
  | { type: 'mtls-proxy:own-metrics'; id: number }
  | { type: 'mtls-proxy:own-metrics-answer'; id: number; metrics: MetricsJson }

const isMessage = (m: unknown): m is Message => typeof (m as Message | undefined)?.type === 'string'

/** What a worker knows of its place among the others. */
export interface WorkerLink {
  id: number
  /** how many workers serve */
  of: number
  /** this worker logs for the whole proxy */
  voice: boolean
  /** serving: the primary may start the next worker */
  ready(): void
  /** the primary asks this worker to stop (or is gone) */
  onStop(stop: () => void): void
  /** this worker's registry, for the primary to sum */
  shareMetrics(registry: Registry): void
  /** every worker's metrics, summed by the primary */
  metrics(): Promise<string>
}

// A scrape waits this long for the primary, which itself gives the workers 5 s.
const METRICS_TIMEOUT_MS = 8_000

/** The link to the primary, in a worker process; undefined in a process serving alone. */
export function workerLink (): WorkerLink | undefined {
  const self = cluster.worker
  if (!cluster.isWorker || !self) return undefined
  let nextId = 0
  const pending = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void }>()
  let stop = () => {}
  let shared: Registry | undefined
  process.on('message', (m: unknown) => {
    if (!isMessage(m)) return
    if (m.type === 'mtls-proxy:stop') stop()
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
  // A primary that is gone (killed) can no longer stop us: stop on our own rather than serve orphaned.
  process.on('disconnect', () => stop())
  const send = (m: Message) => { if (process.connected) process.send?.(m) }
  const role = /^(voice|quiet),(\d+)$/.exec(process.env[ROLE_ENV] ?? '')
  return {
    id: self.id,
    of: Number(role?.[2] ?? 1),
    voice: role?.[1] === 'voice',
    ready: () => send({ type: 'mtls-proxy:ready' }),
    onStop: (fn) => { stop = fn },
    shareMetrics (registry) {
      shared = registry
    },
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

/**
 * Sums the serving workers' metrics, as prom-client's AggregatorRegistry does, but asks only the
 * workers that serve: one still starting would keep every scrape waiting for it.
 */
class Gatherer {
  #nextId = 0
  readonly #waiting = new Map<number, { from: Set<Worker>; got: MetricsJson[]; done: () => void }>()

  constructor (readonly serving: ReadonlySet<Worker>) {}

  async all (): Promise<string> {
    const id = this.#nextId++
    const from = new Set([...this.serving].filter((w) => w.isConnected()))
    const got: MetricsJson[] = []
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, GATHER_TIMEOUT_MS)
      const done = () => { clearTimeout(timer); resolve() }
      this.#waiting.set(id, { from, got, done })
      for (const worker of from) worker.send({ type: 'mtls-proxy:own-metrics', id })
      if (from.size === 0) done()
    })
    this.#waiting.delete(id)
    return AggregatorRegistry.aggregate(got).metrics()
  }

  answer (worker: Worker, id: number, metrics: MetricsJson): void {
    const waiting = this.#waiting.get(id)
    if (!waiting?.from.delete(worker)) return
    waiting.got.push(metrics)
    if (waiting.from.size === 0) waiting.done()
  }
}

/** A worker died before it served: what it said on stderr is the reason, its exit code ours. */
class StartFailure extends Error {
  constructor (readonly exitCode: number) {
    super(`worker exited with code ${exitCode} before serving`)
  }
}

// A worker that dies is replaced after this long, doubling while replacements die young.
const RESTART_DELAY_MS = 1_000
const MAX_RESTART_DELAY_MS = 30_000
// A worker that served this long died of something other than how it starts.
const YOUNG_MS = 10_000

/**
 * Runs the workers until SIGTERM or SIGINT, when it exits. The first worker starts alone: a
 * configuration mistake is then said once, by it, and resolves with its exit code.
 */
export async function supervise (config: Config, logger?: Logger): Promise<number> {
  const log = logger ?? createLogger({ level: config.logLevel, pretty: process.stdout.isTTY === true, atomicWrites: true })
  const serving = new Set<Worker>()
  const gather = new Gatherer(serving)
  let stopping = false
  let restartDelay = RESTART_DELAY_MS

  cluster.on('message', (worker, m: unknown) => {
    if (!isMessage(m)) return
    if (m.type === 'mtls-proxy:own-metrics-answer') gather.answer(worker, m.id, m.metrics)
    if (m.type !== 'mtls-proxy:metrics') return
    const answer = (a: { text?: string; error?: string }) => {
      if (worker.isConnected()) worker.send({ type: 'mtls-proxy:metrics-answer', id: m.id, ...a })
    }
    gather.all().then((text) => answer({ text }), (err: Error) => answer({ error: err.message }))
  })

  /** Forks a worker; resolves once it serves, rejects with its exit code if it dies first. */
  const start = (voice: boolean) => new Promise<Worker>((resolve, reject) => {
    const worker = cluster.fork({ [ROLE_ENV]: `${voice ? 'voice' : 'quiet'},${config.workers}` })
    const forkedAt = Date.now()
    const early = (code: number | null, signal: string | null) => reject(new StartFailure(code ?? (signal ? 1 : 0)))
    worker.once('exit', early)
    worker.on('message', (m: unknown) => {
      if (!isMessage(m) || m.type !== 'mtls-proxy:ready') return
      worker.off('exit', early)
      serving.add(worker)
      worker.once('exit', (code, signal) => {
        serving.delete(worker)
        if (stopping) return
        log.error({ pid: worker.process.pid, code, signal }, `worker ${worker.id} (pid ${worker.process.pid}) exited ` +
          `${signal ? `on ${signal}` : `with code ${code}`}`)
        replace(voice, Date.now() - forkedAt)
      })
      resolve(worker)
    })
  })

  /** Starts another worker in the place of one that died, later the younger they die. */
  const replace = (voice: boolean, lived: number) => {
    restartDelay = lived > YOUNG_MS ? RESTART_DELAY_MS : Math.min(restartDelay * 2, MAX_RESTART_DELAY_MS)
    log.warn(`starting another worker in ${restartDelay / 1000} s`)
    setTimeout(() => {
      if (stopping) return
      const forkedAt = Date.now()
      start(voice).catch(() => replace(voice, Date.now() - forkedAt))
    }, restartDelay).unref()
  }

  const stopAll = () => {
    stopping = true
    for (const worker of Object.values(cluster.workers ?? {})) {
      if (worker?.isConnected()) worker.send({ type: 'mtls-proxy:stop' })
      else worker?.kill('SIGTERM')
    }
  }
  const allExited = () => new Promise<void>((resolve) => {
    const check = () => { if (Object.keys(cluster.workers ?? {}).length === 0) resolve() }
    cluster.on('exit', check)
    check()
  })

  // SIGHUP goes to every serving worker (each reloads; the voice says so); one still starting reads
  // the files anyway. Handled from the very start: by default SIGHUP would end the primary.
  process.on('SIGHUP', () => {
    for (const worker of serving) worker.process.kill('SIGHUP')
  })
  // SIGTERM or SIGINT: each worker stops as one process would, finishing what is in flight, and
  // close-with-grace exits. A second signal ends the primary at once; the workers, disconnected,
  // then stop on their own.
  const graceful = { delay: config.shutdownTimeoutMs + 10_000, logger: log, skip: ['SIGHUP' as const] }
  const { uninstall } = closeWithGrace(graceful, async ({ signal, err }) => {
    if (err) log.error({ err }, 'fatal error in the primary, stopping the workers')
    else log.info({ signal }, `${signal}: stopping ${Object.keys(cluster.workers ?? {}).length} workers`)
    stopAll()
    await allExited()
    log.info('stopped')
    await new Promise<void>((resolve) => log.flush(() => resolve()))
  })
  try {
    await start(true)
    await Promise.all(Array.from({ length: config.workers - 1 }, () => start(false)))
  } catch (err) {
    if (stopping) return new Promise<number>(() => {})
    uninstall()
    stopAll()
    await allExited()
    if (err instanceof StartFailure) return err.exitCode || 1
    throw err
  }
  const pids = Object.values(cluster.workers ?? {}).map((w) => w?.process.pid)
  log.info({ workers: config.workers, pids }, `${config.workers} worker processes share the listener`)
  return new Promise<number>(() => {})
}
