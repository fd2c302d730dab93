// The main listener's connections. Each holds a slot of --max-connections, so one that sends
// nothing must not hold it for long: a new connection has --client-header-timeout to send a whole
// request head (over HTTPS, its TLS handshake too), else it is closed. And when the table is full, a
// new connection is let in by closing one that is idle (never used, or kept alive between requests),
// or one whose client does not read the answers the proxy has finished, rather than refused; only
// when every slot is at work (requests, watches, tunnels) is it refused.
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
  /** every connection admitted and not yet closed, with its answers under way ('tunnel': upgraded) */
  readonly #open = new Map<Socket, Set<ServerResponse> | 'tunnel'>()
  /** admitted connections with nothing under way, the longest idle first: a Set keeps insertion order */
  readonly #idle = new Set<Socket>()
  /** connections that have not sent a whole request head yet, and the timer that closes them */
  readonly #waiting = new Map<Socket, NodeJS.Timeout>()

  constructor (limits: ConnectionLimits) {
    this.#limits = limits
  }

  /** Takes over the server's connections (Node's own maxConnections is left off: it refuses, never makes room). */
  install (server: Server): void {
    server.on('connection', (socket: Socket) => this.#admit(socket))
    server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => this.#started(req, res))
    server.prependListener('upgrade', (req: IncomingMessage) => this.#upgraded(req))
  }

  #admit (socket: Socket): void {
    if (this.#open.size >= this.#limits.maxConnections && !this.#makeRoom()) {
      socket.on('error', () => {})
      socket.destroy()
      return
    }
    this.#open.set(socket, new Set())
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

  /**
   * Makes room by closing the connection idle the longest, else one whose every answer the proxy has
   * ended but its client does not read (pipelined requests it never reads the answers of would hold
   * the slot for good); false when every connection is at work.
   */
  #makeRoom (): boolean {
    const [oldest] = this.#idle
    const victim = oldest ?? [...this.#open].find(([, answers]) => answers !== 'tunnel' && [...answers].every((a) => a.writableEnded))?.[0]
    if (!victim) return false
    this.#idle.delete(victim)
    this.#open.delete(victim)
    victim.destroy()
    return true
  }

  #started (req: IncomingMessage, res: ServerResponse): void {
    const socket = tcpOf(req.socket)
    const answers = this.#open.get(socket)
    if (answers === undefined || answers === 'tunnel') return
    this.#busy(socket)
    answers.add(res)
    res.once('close', () => {
      answers.delete(res)
      if (answers.size === 0 && this.#open.get(socket) === answers && !socket.destroyed) this.#idle.add(socket)
    })
  }

  #upgraded (req: IncomingMessage): void {
    const socket = tcpOf(req.socket)
    if (!this.#open.has(socket)) return
    this.#busy(socket)
    this.#open.set(socket, 'tunnel')
  }

  /** A request head arrived: no longer waiting for one, and not idle. */
  #busy (socket: Socket): void {
    clearTimeout(this.#waiting.get(socket))
    this.#waiting.delete(socket)
    this.#idle.delete(socket)
  }
}
