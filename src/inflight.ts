// Requests in flight, so shutdown can end open watches at once and let the others finish.
import type { ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'

// Kubernetes' own notion of a long-running request that streams until someone stops it.
const LONG_RUNNING = /[?&](?:watch|follow)=(?:1|true)(?:&|$)|^\/(?:api|apis(?:\/[^/?]+)?)\/v[^/?]*\/watch\//

export function isLongRunning(url: string): boolean {
  return LONG_RUNNING.test(url)
}

export class LongRunningResponses {
  readonly #open = new Map<ServerResponse, Readable>()

  get size(): number {
    return this.#open.size
  }

  add(res: ServerResponse, upstreamBody: Readable): void {
    this.#open.set(res, upstreamBody)
    res.once('close', () => this.#open.delete(res))
  }

  /** Ends each stream with a clean end of body, so clients see a finished watch and re-list elsewhere. */
  endAll(): void {
    for (const [res, body] of this.#open) {
      body.unpipe(res)
      res.end()
      body.destroy()
    }
    this.#open.clear()
  }
}
