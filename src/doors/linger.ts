// After a refusal the client may still be sending (a body, a tunnel's first bytes). Closing at once
// makes the kernel answer those bytes with a reset, which can destroy our answer before the client
// has read it; reading on forever lets a refused client hold a connection slot for as long as it
// likes. So, like nginx's lingering close, what still arrives is read and dropped within a bound of
// bytes and of time, then the connection is closed.
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex, Readable } from 'node:stream'
import { declaresBody } from '../forwarding/headers.js'

/** At most this much more is read from a refused client, */
const LINGER_MAX_BYTES = 1024 * 1024
/** and for at most this long (nginx's lingering_timeout): per connection, however many refusals it collects. */
export const LINGER_MAX_MS = 5_000

/** What a connection may still send us after its first refusal. */
interface Allowance {
  deadline: number
  /** socket.bytesRead when it was granted */
  from: number
}

// One allowance per connection, shared by every refused body on it: pipelining refused requests
// one after another does not renew it.
const allowances = new WeakMap<Socket, Allowance>()

function allowance (socket: Socket): Allowance {
  let granted = allowances.get(socket)
  if (!granted) {
    granted = { deadline: Date.now() + LINGER_MAX_MS, from: socket.bytesRead }
    allowances.set(socket, granted)
  }
  return granted
}

/**
 * Reads and drops what `from` still sends; destroys the socket once past its allowance. Reaching
 * the end within it destroys nothing: an HTTP request body read to its end leaves the connection
 * reusable.
 */
function discardWithin (from: Readable, socket: Socket): void {
  const granted = allowance(socket)
  const cut = () => {
    clearTimeout(timer)
    socket.destroy()
  }
  const timer = setTimeout(cut, Math.max(0, granted.deadline - Date.now()))
  timer.unref()
  const stop = () => clearTimeout(timer)
  from.on('data', () => {
    if (socket.bytesRead - granted.from > LINGER_MAX_BYTES) cut()
  })
  from.once('end', stop)
  from.once('close', stop)
  from.resume()
}

/** Ends our side of a raw socket (with `last`), reads what the client still sends within the bounds, then closes. */
export function endThenLinger (socket: Duplex, last?: string): void {
  socket.end(last)
  // HTTP servers allow half-open sockets: the client's side may stay open. Bound it.
  socket.once('end', () => socket.destroy())
  discardWithin(socket, socket as Socket)
}

/**
 * For an answer the proxy makes itself (a refusal, its own endpoints) to a request whose body has not
 * all arrived: Node would go on reading that body, however long and slow, to keep the connection.
 * Called before the answer is written: reading it ourselves stops Node from dumping it unseen.
 */
export function dropUnreadBody (req: IncomingMessage): void {
  const socket = req.socket
  if (!bodyPending(req) || !socket || socket.destroyed) return
  discardWithin(req, socket)
}

/**
 * Whether some of the request's body is still to arrive. (`complete` alone will not do: while the
 * request is first handled it is false even for a request that has no body at all.)
 */
export function bodyPending (req: IncomingMessage): boolean {
  return !req.complete && declaresBody(req.headers)
}
