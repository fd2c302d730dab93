// Requests in flight, so shutdown can end open watches at once and let the others finish.
import type { ServerResponse } from 'node:http'

// Kubernetes' own notion of a long-running request that streams until someone stops it: the old
// /watch/ paths, or a watch or follow parameter the API server reads as true. It reads a boolean
// parameter as false only when it is `0` or `false` (any case), so `watch=True`, `watch=yes` and a
// bare `watch` are all watches (apimachinery's Convert_Slice_string_To_bool).
const WATCH_PATH = /^\/(?:api|apis(?:\/[^/?]+)?)\/v[^/?]*\/watch\//
const STREAM_PARAM = /[?&](watch|follow)(?:=([^&]*))?(?=&|$)/g
const FALSE = /^(?:0|false)$/i

export function isLongRunning (url: string): boolean {
  // Most requests name neither: two substring searches spare them both patterns.
  if (!url.includes('watch') && !url.includes('follow')) return false
  if (WATCH_PATH.test(url)) return true
  // The API server takes the first value of a parameter given twice.
  let watchSeen = false
  let followSeen = false
  for (const [, name, value = ''] of url.matchAll(STREAM_PARAM)) {
    if (name === 'watch' ? watchSeen : followSeen) continue
    if (name === 'watch') watchSeen = true
    else followSeen = true
    if (!FALSE.test(value)) return true
  }
  return false
}

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
