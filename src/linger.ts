// After a refusal the client may still be sending (a body, a tunnel's first bytes). Closing at once
// makes the kernel answer those bytes with a reset, which can destroy our answer before the client
// has read it; reading on forever lets a refused client hold a connection slot for as long as it
// likes. So, like nginx's lingering close, what still arrives is read and dropped within a bound of
// bytes and of time, then the connection is closed.
import type { IncomingMessage } from 'node:http'
import type { Duplex, Readable } from 'node:stream'

/** At most this much more is read from a refused client. */
export const LINGER_MAX_BYTES = 1024 * 1024
/** And for at most this long (nginx's lingering_timeout). */
export const LINGER_MAX_MS = 5_000

/**
 * Reads and drops what `from` still sends; calls `close` once past either bound. Reaching the end
 * within them calls nothing: an HTTP request body read to its end leaves the connection reusable.
 */
export function discardWithin(from: Readable, close: () => void): void {
  let bytes = 0
  const stop = () => clearTimeout(timer)
  const cut = () => {
    stop()
    close()
  }
  const timer = setTimeout(cut, LINGER_MAX_MS)
  timer.unref()
  from.on('data', (chunk: Buffer) => {
    bytes += chunk.length
    if (bytes > LINGER_MAX_BYTES) cut()
  })
  from.once('end', stop)
  from.once('close', stop)
  from.resume()
}

/** Ends our side of a raw socket (with `last`), reads what the client still sends within the bounds, then closes. */
export function endThenLinger(socket: Duplex, last?: string): void {
  socket.end(last)
  // HTTP servers allow half-open sockets: the client's side may stay open. Bound it.
  socket.once('end', () => socket.destroy())
  discardWithin(socket, () => socket.destroy())
}

/**
 * For an answer the proxy makes itself (a refusal, its own endpoints) to a request whose body has not
 * all arrived: Node would go on reading that body, however long and slow, to keep the connection.
 * Called before the answer is written: reading it ourselves stops Node from dumping it unseen.
 */
export function dropUnreadBody(req: IncomingMessage): void {
  const socket = req.socket
  if (req.complete || !socket || socket.destroyed) return
  discardWithin(req, () => socket.destroy())
}
