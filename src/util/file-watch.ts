// Noticing that files the proxy read have changed: their folders are watched, which also catches
// renames and the `..data` symlink swap Kubernetes uses to update Secret volumes, and files that
// hold a token are polled too (stat only), so a rotation is seen within seconds even where no folder
// event comes (network file systems, some container runtimes). Writers often replace a certificate
// and its key a few milliseconds apart: the change is told once things are quiet.
import { unwatchFile, watch, watchFile, type FSWatcher } from 'node:fs'
import { dirname } from 'node:path'
import type { Logger } from 'pino'

const DEBOUNCE_MS = 100
// A polled file is looked at this often.
const POLL_MS = 5_000

export interface Watched {
  /** files whose folders are watched */
  watch: readonly string[]
  /** files polled besides */
  poll: readonly string[]
}

/** Calls `changed` once after each burst of changes; returns what stops watching. `what` names the files in warnings. */
export function watchFiles (files: Watched, changed: () => void, logger: Logger, what: string): () => void {
  let timer: NodeJS.Timeout | undefined
  const schedule = () => {
    clearTimeout(timer)
    timer = setTimeout(changed, DEBOUNCE_MS)
    timer.unref()
  }
  const polled: string[] = []
  for (const file of files.poll) {
    watchFile(file, { persistent: false, interval: POLL_MS }, (now, before) => {
      if (now.mtimeMs !== before.mtimeMs || now.ino !== before.ino || now.size !== before.size) schedule()
    })
    polled.push(file)
  }
  const watchers: FSWatcher[] = []
  for (const folder of new Set(files.watch.map((f) => dirname(f)))) {
    try {
      const watcher = watch(folder, { persistent: false }, schedule)
      watcher.on('error', (err) => logger.warn({ folder, err: err.message }, `stopped watching the folder of ${what}`))
      watchers.push(watcher)
    } catch (err) {
      logger.warn({ folder, err: (err as Error).message }, `cannot watch the folder of ${what}; reload with SIGHUP`)
    }
  }
  return () => {
    clearTimeout(timer)
    for (const w of watchers) w.close()
    for (const file of polled) unwatchFile(file)
  }
}
