// The --workers primary's /-/metrics: every serving worker's registry, summed.
import type { Worker } from 'node:cluster'
import { AggregatorRegistry } from 'prom-client'
import { tell, type MetricsJson } from './protocol.js'

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
export class Gatherer {
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
    // prom-client's types say a numeric enum; the JSON holds its name
    const counts = last.filter((m) => ['counter', 'histogram'].includes(String(m.type)))
    const before = this.#retired
    this.#retired = before.then((retired) => AggregatorRegistry.aggregate([retired, counts]).getMetricsAsJSON())
  }
}
