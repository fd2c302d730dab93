// The main listener's connections. Each holds a slot of --max-connections, so one that sends
// nothing must not hold it for long: a new connection has --client-header-timeout to send a whole
// request head (over HTTPS, its TLS handshake too), else it is closed. And when the table is full, a
// new connection is let in by closing one that is idle (never used, or kept alive between requests)
// rather than refused; only when every slot is busy (requests, watches, tunnels) is it refused.
// Without this, 20 sockets that never spoke locked a caller with a valid token out of
// `--max-connections 20` for 69 s (120 s over HTTPS).
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

export interface ConnectionLimits {
  maxConnections: number
  /** time from connecting to a complete first request head (the TLS handshake included) */
  headTimeoutMs: number
}

/**
 * The TCP socket under a TLS one (Node keeps it as `_parent`); the socket itself for plain HTTP. Its
 * timer, set when it connected, so also bounds a TLS handshake that never ends.
 */
const tcpOf = (socket: Socket): Socket => (socket as Socket & { _parent?: Socket })._parent ?? socket

export class ConnectionTable {
  readonly #limits: ConnectionLimits
  /** every connection admitted and not yet closed, with its requests under way (-1: a tunnel now) */
  readonly #open = new Map<Socket, number>()
  /** admitted connections with nothing under way, the longest idle first: a Set keeps insertion order */
  readonly #idle = new Set<Socket>()
  /** connections that have not sent a whole request head yet, and the timer that closes them */
  readonly #waiting = new Map<Socket, NodeJS.Timeout>()

  constructor (limits: ConnectionLimits) {
    this.#limits = limits
  }

  get size (): number {
    return this.#open.size
  }

  /** Takes over the server's connections (Node's own maxConnections is left off: it refuses, never makes room). */
  install (server: Server): void {
    server.on('connection', (socket: Socket) => this.#admit(socket))
    server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => this.#started(req, res))
    server.prependListener('upgrade', (req: IncomingMessage) => this.#upgraded(req))
  }

  #admit (socket: Socket): void {
    if (this.#open.size >= this.#limits.maxConnections && !this.#evictIdle()) {
      socket.on('error', () => {})
      socket.destroy()
      return
    }
    this.#open.set(socket, 0)
    this.#idle.add(socket)
    const timer = setTimeout(() => socket.destroy(), this.#limits.headTimeoutMs)
    timer.unref()
    this.#waiting.set(socket, timer)
    socket.once('close', () => {
      clearTimeout(this.#waiting.get(socket))
      this.#waiting.delete(socket)
      this.#idle.delete(socket)
      this.#open.delete(socket)
    })
  }

  /** Makes room by closing the connection idle the longest; false when none is idle. */
  #evictIdle (): boolean {
    const [oldest] = this.#idle
    if (!oldest) return false
    this.#idle.delete(oldest)
    this.#open.delete(oldest)
    oldest.destroy()
    return true
  }

  #started (req: IncomingMessage, res: ServerResponse): void {
    const socket = tcpOf(req.socket)
    const under = this.#open.get(socket)
    if (under === undefined || under < 0) return
    clearTimeout(this.#waiting.get(socket))
    this.#waiting.delete(socket)
    this.#idle.delete(socket)
    this.#open.set(socket, under + 1)
    res.once('close', () => {
      const now = this.#open.get(socket)
      if (now === undefined || now < 0) return
      this.#open.set(socket, now - 1)
      if (now === 1 && !socket.destroyed) this.#idle.add(socket)
    })
  }

  #upgraded (req: IncomingMessage): void {
    const socket = tcpOf(req.socket)
    if (!this.#open.has(socket)) return
    clearTimeout(this.#waiting.get(socket))
    this.#waiting.delete(socket)
    this.#idle.delete(socket)
    this.#open.set(socket, -1)
  }
}
