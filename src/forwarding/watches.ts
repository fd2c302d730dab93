// Requests in flight, so shutdown can end open watches at once and let the others finish.
import type { ServerResponse } from 'node:http'

export class OpenWatches {
  readonly #open = new Map<ServerResponse, () => void>()

  get size (): number {
    return this.#open.size
  }

  /** `end` stops the upstream stream and ends the response with a clean end of body. */
  add (res: ServerResponse, end: () => void): void {
    this.#open.set(res, end)
    res.once('close', () => this.#open.delete(res))
  }

  /** Ends each stream cleanly, so clients see a finished watch and re-list elsewhere. */
  endAll (): void {
    for (const end of this.#open.values()) end()
    this.#open.clear()
  }
}
