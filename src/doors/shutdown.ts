// Stopping without losing a request: from the first signal new requests get 503 and every answer
// says `Connection: close`; watches (which never finish on their own) are ended cleanly; the rest
// may finish within --shutdown-timeout, after which whatever is left, tunnels included, is cut.
import type { FastifyInstance } from 'fastify'
import type { Tunnels } from '../forwarding/tunnels.js'
import type { OpenWatches } from '../forwarding/watches.js'

export interface ShutdownDeps {
  graceMs: number
  watches: OpenWatches
  tunnels: Tunnels
  /** what else to stop once the server has closed, in order */
  stop: ReadonlyArray<() => unknown>
}

export class Shutdown {
  #closing = false

  /** shutting down: refuse new requests, close connections after each answer */
  get closing (): boolean {
    return this.#closing
  }

  install (app: FastifyInstance, deps: ShutdownDeps): void {
    app.addHook('preClose', async () => {
      this.#closing = true
      deps.watches.endAll()
      const timer = setTimeout(() => {
        app.server.closeAllConnections()
        deps.tunnels.destroyAll()
      }, deps.graceMs)
      timer.unref()
      app.server.once('close', () => clearTimeout(timer))
    })
    app.addHook('onClose', async () => {
      deps.tunnels.destroyAll()
      for (const stop of deps.stop) await stop()
    })
  }
}
