// Forwarding one request. @fastify/http-proxy routes every forwarded method and path and vets the
// destination; this is its `handler`: it sends the request through the upstream pool and streams
// the answer straight into the client's response, each chunk from undici's parser to the socket.
// (reply-from's general-purpose path, a header object per request, a Readable per body and
// Fastify's send pipeline, cost more than everything else the proxy does: BENCHMARKS.md.)
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Stream } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Dispatcher } from 'undici'
import type { ClusterParts } from '../clusters/parts.js'
import type { Cors } from '../admission/cors.js'
import { clientResponseHeaders, upstreamRequestHeaders } from './headers.js'
import type { OpenWatches } from './watches.js'
import { bodyPending } from '../doors/linger.js'
import { writeError, type ErrorAnswer } from '../doors/status.js'

export interface ForwardOptions {
  /** the cluster a request is for: its parts, or (once opened, if need be) why it cannot serve */
  cluster: (request: FastifyRequest) => ClusterParts | Promise<ClusterParts | ErrorAnswer>
  /** the request streams until stopped (a watch, a followed log), as its target was read */
  watch: (request: FastifyRequest) => boolean
  watches: OpenWatches
  /** shutting down: each response tells its client not to reuse the connection */
  closing: () => boolean
  /** longest pause between reads of a request body before it is cut (0: none) */
  clientBodyTimeoutMs: number
  /** the upstream answered (its status code, before the body) */
  onAnswer: (request: FastifyRequest, statusCode: number, cluster: ClusterParts) => void
  /** the upstream could not be asked, or did not answer: what to tell the client */
  onFailure: (request: FastifyRequest, err: Error, cluster: ClusterParts) => ErrorAnswer
  /** CORS for the listed origins' pages, when any are listed */
  cors?: Cors
  /**
   * Keeps an answer's Location and Content-Location in its cluster (headers changed in place): the
   * refusal to answer instead, when one would lead a client out of it
   */
  confine?: (request: FastifyRequest, headers: string[], cluster: ClusterParts, statusCode: number) => ErrorAnswer | undefined
}

export type ForwardHandler = (request: FastifyRequest, reply: FastifyReply, dest: string) => void

export function createForwarder (options: ForwardOptions): ForwardHandler {
  return (request, reply, dest) => {
    reply.hijack()
    const cluster = options.cluster(request)
    if (!(cluster instanceof Promise)) {
      send(request, reply, dest, cluster, options)
      return
    }
    // A cluster whose exec plugin runs on first use: the request waits for it, its body unread meanwhile.
    void cluster.then((found) => {
      if ('httpStatus' in found) {
        request.failure = found.message
        if (!reply.raw.destroyed) writeProxyError(reply.raw, found, !request.raw.complete, request.url, options.cors)
      } else {
        send(request, reply, dest, found, options)
      }
    })
  }
}

function send (request: FastifyRequest, reply: FastifyReply, dest: string, cluster: ClusterParts, options: ForwardOptions): void {
  const { upstream } = cluster
  const req = request.raw
  const headers = upstreamRequestHeaders(req.rawHeaders, req.headers.connection, {
    host: upstream.url.host, clientAddress: req.socket.remoteAddress, upgrade: false,
  })
  // The query string exactly as the caller sent it; dest is the path the guard judged, prefix removed.
  const q = request.url.indexOf('?')
  const path = upstream.path(q < 0 ? dest : dest + request.url.slice(q))
  // With no content-type parsers, Fastify hands any body over as the request stream itself.
  const body = request.body instanceof Stream ? (request.body as IncomingMessage) : null
  const relay = new Relay(request, reply.raw, options, cluster)
  if (body && bodyPending(req) && options.clientBodyTimeoutMs > 0) relay.limitBodyPauses(options.clientBodyTimeoutMs)
  upstream.dispatch({ origin: upstream.origin, path, method: request.method, headers, body }, relay)
}

function earlyHints (res: ServerResponse, flat: string[]): void {
  const hints: Record<string, string[]> = Object.create(null) as Record<string, string[]>
  for (let i = 0; i < flat.length; i += 2) (hints[flat[i]!] ??= []).push(flat[i + 1]!)
  try {
    res.writeEarlyHints(hints)
  } catch {
    // A Link Node will not write: the hints are only hints.
  }
}

/** One upstream response into one client response, with backpressure both ways and aborts both ways. */
class Relay implements Dispatcher.DispatchHandler {
  #abort: ((err?: Error) => void) | undefined
  #answered = false
  #finished = false
  /** stops --client-body-timeout's timer, once the body is in or the exchange is over */
  #stopBodyTimer: (() => void) | undefined
  readonly #request: FastifyRequest
  readonly #res: ServerResponse
  readonly #options: ForwardOptions
  readonly #cluster: ClusterParts

  constructor (request: FastifyRequest, res: ServerResponse, options: ForwardOptions, cluster: ClusterParts) {
    this.#request = request
    this.#res = res
    this.#options = options
    this.#cluster = cluster
    // The client went away: stop the upstream request too, whether or not its answer has begun.
    res.once('close', () => {
      if (!this.#finished) this.#abort?.(new Error('the client closed the connection'))
    })
  }

  /**
   * A client that stops sending its body would hold its connection, and a request upstream, for as
   * long as it likes. The socket's idle timer (refreshed by every read, also while Node's parser
   * reads it directly) is set while the body is incomplete and this exchange is going on, and
   * cleared when either ends; watches and tunnels have no body and so no timer.
   */
  limitBodyPauses (ms: number): void {
    const req = this.#request.raw
    const socket = req.socket
    // Node's server emits the socket's timeout on the incomplete request; a listener keeps it from destroying the socket itself.
    const stalled = () => {
      if (this.#finished) return
      const message = `the request body stalled: nothing arrived for ${ms / 1000} s (--client-body-timeout)`
      this.#request.failure = message
      this.#finish()
      // Answered before the upstream is let go (letting it go ends the body); Connection: close, so
      // Node closes once it is written. Mid-answer, the cut must show.
      if (this.#res.headersSent) this.#res.destroy()
      else this.#writeError({ httpStatus: 408, reason: 'Timeout', message }, true)
      this.#abort?.(new Error(message))
    }
    const stop = () => {
      this.#stopBodyTimer = undefined
      req.removeListener('timeout', stalled)
      req.removeListener('end', stop)
      if (!socket.destroyed) socket.setTimeout(0)
    }
    this.#stopBodyTimer = stop
    req.once('timeout', stalled)
    req.once('end', stop)
    socket.setTimeout(ms)
  }

  /** The exchange is over, whichever way. */
  #finish (): void {
    this.#finished = true
    this.#stopBodyTimer?.()
  }

  onConnect (abort: (err?: Error) => void): void {
    this.#abort = abort
    if (this.#res.destroyed || this.#finished) abort(new Error('the client closed the connection'))
  }

  onHeaders (statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    const res = this.#res
    if (res.destroyed) return false
    // Informational: the final answer follows. 103 Early Hints goes on to an HTTP/1.1 client, as a
    // proxy must pass 1xx on; writing it as the answer made the real one fail.
    if (statusCode < 200) {
      if (statusCode === 103 && this.#request.raw.httpVersionMinor >= 1) earlyHints(res, clientResponseHeaders(rawHeaders))
      return true
    }
    this.#options.onAnswer(this.#request, statusCode, this.#cluster)
    const headers = clientResponseHeaders(rawHeaders)
    const refused = this.#options.confine?.(this.#request, headers, this.#cluster, statusCode)
    if (refused) {
      // Its body is never read: the answer ends here, and so does the upstream request.
      this.#request.failure = refused.message
      this.#finish()
      this.#writeError(refused, this.#options.closing() || !this.#request.raw.complete)
      this.#abort?.(new Error(refused.message))
      return false
    }
    this.#options.cors?.addTo(res, headers)
    // The connection cannot be reused until the request body was read; the upstream answered early.
    if (this.#options.closing() || !this.#request.raw.complete) headers.push('connection', 'close')
    try {
      res.writeHead(statusCode, headers)
    } catch (err) {
      // A header Node will not send (a control character in a value): refuse the answer, not crash.
      this.#abort?.(err as Error)
      return false
    }
    this.#answered = true
    res.on('drain', resume)
    if (this.#options.watch(this.#request)) {
      // A watch may stay silent for minutes, and clients wait for its headers: send them now.
      res.flushHeaders()
      this.#options.watches.add(res, () => {
        this.#finish()
        this.#abort?.(new Error('mtls-proxy is shutting down'))
        res.end()
      })
    }
    return true
  }

  onData (chunk: Buffer): boolean {
    if (this.#res.writableEnded) return true
    return this.#res.write(chunk)
  }

  onComplete (): void {
    this.#finish()
    if (!this.#res.writableEnded) this.#res.end()
  }

  onError (err: Error): void {
    if (this.#finished) return
    this.#finish()
    const res = this.#res
    if (res.destroyed || res.writableEnded) return
    // Cut mid-body: the client must see an incomplete response, not a short one that looks whole.
    if (this.#answered) {
      res.destroy(err)
      return
    }
    // A body still arriving cannot be read any more (undici let go of it with the upstream): the
    // connection ends with this answer, as it does after an early one.
    const closeAfter = this.#options.closing() || !this.#request.raw.complete
    this.#writeError(this.#options.onFailure(this.#request, err, this.#cluster), closeAfter)
  }

  #writeError (answer: ErrorAnswer, connectionClose: boolean): void {
    writeProxyError(this.#res, answer, connectionClose, this.#request.url, this.#options.cors)
  }
}

/** The proxy's own answer in place of the upstream's, readable by a listed origin's page like any. */
function writeProxyError (res: ServerResponse, answer: ErrorAnswer, connectionClose: boolean, url: string, cors: Cors | undefined): void {
  const lines = cors?.headers(res)
  if (lines) for (let i = 0; i < lines.length; i += 2) res.setHeader(lines[i]!, lines[i + 1]!)
  writeError(res, answer, connectionClose, url)
}
