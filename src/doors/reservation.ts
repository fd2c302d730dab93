// A listening address taken before the slow part of a start (reading credentials, an exec plugin,
// the first probe): a port in use is then said at once, before any line says the upstream is ready,
// as kubectl proxy says it. Connections that come meanwhile wait, paused, and are handed to the
// server once it listens, instead of being refused.
import { createServer, type Server, type Socket } from 'node:net'
import type { Config } from '../settings/types.js'
import { bracketed } from '../util/addresses.js'
import { UsageError } from '../util/errors.js'

const LISTEN_ERRORS: Record<string, string> = {
  EADDRINUSE: 'address already in use (is another proxy running? choose another --port)',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'this machine has no such address',
}

/** A listen error in one line, naming where. */
export function cannotListen (where: string, err: unknown): UsageError {
  if (err instanceof UsageError) return err
  const code = (err as NodeJS.ErrnoException).code ?? ''
  return new UsageError(`cannot listen on ${where}: ${LISTEN_ERRORS[code] ?? (err as Error).message}`)
}

export interface Reservation {
  /** frees the address for the server that will listen there; returns the connections that came meanwhile */
  release: () => Socket[]
  /** the start failed: frees the address, dropping those connections */
  close: () => void
}

/**
 * Listens on host:port, or rejects with the listen error (EADDRINUSE…). Port 0 reserves nothing: any
 * free port will do, and the server picks its own. At most `maxConnections` are held: a new one closes
 * the one held longest rather than being refused, so a few idle sockets (another local user's, a web
 * page's) cannot lock every other client out for a start that may take minutes (connections.ts does
 * the same once serving).
 */
export async function reserve (host: string, port: number, maxConnections: number): Promise<Reservation | undefined> {
  if (port === 0) return undefined
  const held = new Set<Socket>()
  // Paused: nothing is read until the server that answers has them.
  const server: Server = createServer({ pauseOnConnect: true }, (socket) => {
    // A client that resets the connection while it waits is no error of ours.
    socket.on('error', () => socket.destroy())
    socket.once('close', () => held.delete(socket))
    held.add(socket)
    // A Set keeps its order: the first is the one held longest.
    if (held.size > maxConnections) held.values().next().value?.destroy()
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    // exclusive: under --workers the primary checks the port itself, not through node:cluster.
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', reject)
      resolve()
    })
  })
  let open = true
  const stop = () => {
    if (!open) return []
    open = false
    // The listening socket closes at once, so the server may bind the address next.
    server.close()
    const sockets = [...held]
    held.clear()
    for (const socket of sockets) socket.removeAllListeners('close')
    return sockets
  }
  return {
    release: stop,
    close: () => { for (const socket of stop()) socket.destroy() },
  }
}

/** Hands connections accepted by a reservation to the server now listening, which reads them from here on. */
export function handOver (sockets: Socket[], server: Server): void {
  for (const socket of sockets) {
    if (socket.destroyed) continue
    socket.removeAllListeners('error')
    server.emit('connection', socket)
    socket.resume()
  }
}

/** The TCP addresses the settings listen on, taken: the main one (unless a Unix socket) and --status-address. */
export interface Reserved {
  main: Reservation | undefined
  status: Reservation | undefined
  /** the start failed: both freed */
  close: () => void
}

export const mainWhere = (config: Config) => `${bracketed(config.address)}:${config.port}`
export const statusWhere = ({ host, port }: { host: string; port: number }) => `--status-address ${bracketed(host)}:${port}`

/** Takes both, or rejects with one line saying why not (and holds neither). */
export async function reserveListeners (config: Config): Promise<Reserved> {
  const main = config.unixSocket
    ? undefined
    : await reserve(config.address, config.port, config.maxConnections)
      .catch((err: unknown) => { throw cannotListen(mainWhere(config), err) })
  const { statusAddress } = config
  const status = statusAddress
    ? await reserve(statusAddress.host, statusAddress.port, config.maxConnections).catch((err: unknown) => {
      main?.close()
      throw cannotListen(statusWhere(statusAddress), err)
    })
    : undefined
  return { main, status, close: () => { main?.close(); status?.close() } }
}
