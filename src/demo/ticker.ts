// The demo's moving part: a new pod every few seconds, for `kubectl get pods --watch` to show, and
// the oldest deleted past a few, so a demo left running keeps a small set instead of growing for ever.
import type { DemoApiServer } from './api-server.js'

export const TICK_MS = 5_000
export const KEEP = 3

/** What tick n (from 1) does: the pod it adds, and the one it deletes once more than `keep` were added. */
export function tick (n: number, keep = KEEP): { add: string; remove: string | undefined } {
  return { add: `demo-${n}`, remove: n > keep ? `demo-${n - keep}` : undefined }
}

export class PodTicker {
  readonly #api: Pick<DemoApiServer, 'addPod' | 'removePod'>
  readonly #everyMs: number
  #n = 0
  #timer: NodeJS.Timeout | undefined

  /** everyMs: TICK_MS; the tests' is shorter */
  constructor (api: Pick<DemoApiServer, 'addPod' | 'removePod'>, everyMs = TICK_MS) {
    this.#api = api
    this.#everyMs = everyMs
  }

  describe (): string {
    return `a new pod every ${this.#everyMs / 1000} s, the oldest deleted past ${KEEP}`
  }

  start (): void {
    this.#timer = setInterval(() => {
      const { add, remove } = tick(++this.#n)
      this.#api.addPod(add)
      if (remove) this.#api.removePod(remove)
    }, this.#everyMs)
  }

  stop (): void {
    clearInterval(this.#timer)
  }
}
