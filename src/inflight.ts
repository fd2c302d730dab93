// Requests in flight, so shutdown can end open watches at once and let the others finish.
import type { ServerResponse } from 'node:http'

// Kubernetes' own notion of a long-running request that streams until someone stops it. The
// values are what Go's strconv.ParseBool takes as true (the Python client sends `watch=True`).
const LONG_RUNNING = /[?&](?:watch|follow)=(?:1|t|T|true|TRUE|True)(?:&|$)|^\/(?:api|apis(?:\/[^/?]+)?)\/v[^/?]*\/watch\//

export function isLongRunning(url: string): boolean {
  return LONG_RUNNING.test(url)
}

export class LongRunningResponses {
  readonly #open = new Map<ServerResponse, () => void>()

  get size(): number {
    return this.#open.size
  }

  /** `end` stops the upstream stream and ends the response with a clean end of body. */
  add(res: ServerResponse, end: () => void): void {
    this.#open.set(res, end)
    res.once('close', () => this.#open.delete(res))
  }

  /** Ends each stream cleanly, so clients see a finished watch and re-list elsewhere. */
  endAll(): void {
    for (const end of this.#open.values()) end()
    this.#open.clear()
  }
}
