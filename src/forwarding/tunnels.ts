// Tunnels for `Connection: Upgrade` requests: kubectl exec, attach, cp and port-forward, over
// WebSocket (v5.channel.k8s.io, SPDY/3.1+portforward.k8s.io, …) or the older `Upgrade: SPDY/3.1`
// on a POST. Fastify never sees these: Node hands them to the server's 'upgrade' event.
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { ClusterParts } from '../clusters/parts.js'
import type { RequestRecord } from '../ops/metrics.js'
import { clientResponseHeaders, upstreamRequestHeaders } from './headers.js'
import { endThenLinger } from '../doors/linger.js'
import { endSocketWithError, type ErrorAnswer } from '../doors/status.js'
import { describeUpstreamError } from '../upstream/failures.js'

/** Where an admitted tunnel goes. */
export interface TunnelRoute {
  /** the cluster's parts, or (once opened, if need be) why it cannot serve */
  cluster: ClusterParts | Promise<ClusterParts | ErrorAnswer>
  /** what goes upstream: the request's target normalised, any cluster prefix removed */
  forward: string
}

export interface TunnelOptions {
  /** the same admission decision as ordinary requests; a ErrorAnswer is answered and the socket closed */
  admit: (req: IncomingMessage) => ErrorAnswer | undefined
  /** the cluster an admitted request names */
  route: (req: IncomingMessage) => TunnelRoute
  /** the cluster's name for the metrics, decided before admission ('' for none served) */
  clusterName: (req: IncomingMessage) => string
  /** TCP keep-alive probes on both sides of an open tunnel; 0 turns them off */
  keepAliveMs: number
  /** each tunnel, or refused upgrade, once it has closed: for the access log and metrics */
  record: (r: RequestRecord) => void
  onUpstreamError: (cause: string, cluster: ClusterParts) => void
  /** the upstream answered 401 instead of opening the tunnel */
  onUnauthorized: (cluster: ClusterParts) => void
  /** keeps an answer's Location in its cluster (headers changed in place), or says why the answer is refused */
  confine: (req: IncomingMessage, headers: string[], cluster: ClusterParts, statusCode: number) => ErrorAnswer | undefined
}

/**
 * The flat header list grouped by name, as node:https takes it: repeated names become arrays (still
 * separate lines). Node frames a body-less POST itself only when headers come as an object; a
 * null-prototype one, so a header named `constructor` or `__proto__` is just a header.
 */
function grouped (flat: readonly string[]): Record<string, string | string[]> {
  const out = Object.create(null) as Record<string, string | string[]>
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i]!
    const existing = out[name]
    out[name] = existing === undefined ? flat[i + 1]! : [...(Array.isArray(existing) ? existing : [existing]), flat[i + 1]!]
  }
  return out
}

function headBlock (statusCode: number, statusMessage: string, rawHeaders: string[]): string {
  const lines = [`HTTP/1.1 ${statusCode} ${statusMessage}`]
  for (let i = 0; i < rawHeaders.length; i += 2) lines.push(`${rawHeaders[i]}: ${rawHeaders[i + 1]}`)
  return `${lines.join('\r\n')}\r\n\r\n`
}

/**
 * An upgrade the upstream answered with something other than 101 (an error page): relayed as it
 * arrives, in a framing that shows a cut as a cut (its Content-Length, or chunks with a last one),
 * then the connection is closed.
 */
function relayAnswer (res: IncomingMessage, headers: string[], client: Duplex, head: boolean): void {
  const status = res.statusCode ?? 502
  const chunked = !head && status !== 204 && status !== 304 && res.headers['content-length'] === undefined
  if (chunked) headers.push('transfer-encoding', 'chunked')
  headers.push('connection', 'close')
  client.write(headBlock(status, res.statusMessage ?? '', headers))
  res.on('data', (chunk: Buffer) => {
    let more: boolean
    if (chunked) {
      client.cork()
      client.write(`${chunk.length.toString(16)}\r\n`)
      client.write(chunk)
      more = client.write('\r\n')
      client.uncork()
    } else {
      more = client.write(chunk)
    }
    if (!more) {
      res.pause()
      client.once('drain', () => res.resume())
    }
  })
  res.once('end', () => endThenLinger(client, chunked ? '0\r\n\r\n' : undefined))
  // The upstream went away mid-answer: the client must not take what it got for the whole.
  res.once('close', () => { if (!res.complete) client.destroy() })
  res.on('error', () => client.destroy())
}

/** What became of a tunnel, for its access line. */
interface Outcome {
  status: number
  error: string | undefined
}

export class Tunnels {
  readonly #opts: TunnelOptions
  /** client sockets of open tunnels; closing one closes its upstream side too */
  readonly #open = new Set<Duplex>()

  constructor (opts: TunnelOptions) {
    this.#opts = opts
  }

  get size (): number {
    return this.#open.size
  }

  /** Cuts every open tunnel (after the shutdown grace period). */
  destroyAll (): void {
    for (const socket of this.#open) socket.destroy()
  }

  /** One `Connection: Upgrade` request: admitted or refused, then tunnelled; recorded once it has closed. */
  handle (req: IncomingMessage, client: Duplex, head: Buffer): void {
    const started = process.hrtime.bigint()
    const target = req.url ?? '/'
    const outcome: Outcome = { status: 0, error: undefined }
    client.on('error', () => client.destroy())
    client.once('close', () => {
      this.#open.delete(client)
      const socket = client as Socket
      this.#opts.record({
        method: req.method ?? 'GET',
        url: target,
        status: outcome.status,
        upgrade: req.headers.upgrade,
        duration: Number(process.hrtime.bigint() - started) / 1e9,
        bytesIn: socket.bytesRead,
        bytesOut: socket.bytesWritten,
        ...(outcome.error ? { error: outcome.error } : {}),
        cluster: this.#opts.clusterName(req),
      })
    })
    const refusal = this.#opts.admit(req)
    if (refusal) {
      outcome.status = refusal.httpStatus
      endSocketWithError(client, refusal)
      return
    }
    // Counted as a tunnel from here: a refused one only lingers.
    this.#open.add(client)
    const route = this.#opts.route(req)
    if (!(route.cluster instanceof Promise)) {
      this.#forward(req, route.forward, route.cluster, client, head, outcome)
      return
    }
    // A cluster whose exec plugin runs on first use: the client's bytes wait in the socket meanwhile.
    void route.cluster.then((found) => {
      if (client.destroyed) return
      if ('httpStatus' in found) {
        outcome.status = found.httpStatus
        outcome.error = found.message
        endSocketWithError(client, found)
      } else {
        this.#forward(req, route.forward, found, client, head, outcome)
      }
    })
  }

  #forward (req: IncomingMessage, forward: string, cluster: ClusterParts, client: Duplex, head: Buffer, outcome: Outcome): void {
    const { upstream } = cluster
    const headers = upstreamRequestHeaders(req.rawHeaders, req.headers.connection, {
      host: upstream.url.host, clientAddress: req.socket.remoteAddress, upgrade: true,
    })
    const outgoing = upstream.upgradeRequest(req.method ?? 'GET', forward, grouped(headers))
    // Once the upstream's answer has begun, nothing else may be written after it.
    let answering = false
    // The caller gave up before the upstream answered: no failure of the upstream's.
    let abandoned = false
    const abandon = () => {
      abandoned = true
      outgoing.destroy()
    }
    client.once('close', abandon)
    outgoing.on('error', (err) => {
      if (abandoned) return
      const failure = describeUpstreamError(err, upstream)
      outcome.error = failure.message
      this.#opts.onUpstreamError(failure.cause, cluster)
      if (answering) {
        client.destroy()
        return
      }
      outcome.status = failure.httpStatus
      endSocketWithError(client, failure)
    })
    /** An answer whose Location would lead out of the cluster is refused: the client never sees it. */
    const refused = (headers: string[], statusCode: number, upstreamSide: { destroy: () => void }): boolean => {
      const refusal = this.#opts.confine(req, headers, cluster, statusCode)
      if (!refusal) return false
      client.removeListener('close', abandon)
      // What the upstream does next is no failure to tell: the client has its answer.
      abandoned = true
      upstreamSide.destroy()
      outcome.status = refusal.httpStatus
      outcome.error = refusal.message
      endSocketWithError(client, refusal)
      return true
    }
    outgoing.on('upgrade', (res, upstreamSocket, upstreamHead) => {
      upstreamSocket.on('error', () => upstreamSocket.destroy())
      const headers = [...res.rawHeaders]
      if (refused(headers, 101, upstreamSocket)) return
      client.removeListener('close', abandon)
      answering = true
      outcome.status = 101
      client.write(headBlock(101, res.statusMessage ?? 'Switching Protocols', headers))
      this.#pipe(client, head, upstreamSocket, upstreamHead)
    })
    outgoing.on('response', (res) => {
      const headers = clientResponseHeaders(res.rawHeaders)
      if (refused(headers, res.statusCode ?? 502, res)) return
      outcome.status = res.statusCode ?? 502
      if (res.statusCode === 401) this.#opts.onUnauthorized(cluster)
      answering = true
      relayAnswer(res, headers, client, req.method === 'HEAD')
    })
    outgoing.end()
  }

  #pipe (client: Duplex, clientHead: Buffer, upstreamSocket: Duplex, upstreamHead: Buffer): void {
    const keepAlive = this.#opts.keepAliveMs
    for (const s of [client, upstreamSocket] as Socket[]) {
      s.setTimeout?.(0)
      s.setNoDelay?.(true)
      if (keepAlive > 0) s.setKeepAlive?.(true, keepAlive)
    }
    if (upstreamHead.length > 0) client.write(upstreamHead)
    if (clientHead.length > 0) upstreamSocket.write(clientHead)
    // pipe() ends the other side when one side ends (half-close passes through); an error ends both.
    client.pipe(upstreamSocket)
    upstreamSocket.pipe(client)
    const destroyBoth = () => {
      client.destroy()
      upstreamSocket.destroy()
    }
    client.on('error', destroyBoth)
    upstreamSocket.on('error', destroyBoth)
    // When one side is gone, the other gets what is still buffered for it, then is closed too.
    const closeAfterFlush = (other: Duplex) => () => {
      other.end()
      if (other.writableFinished) other.destroy()
      else other.once('finish', () => other.destroy())
    }
    client.once('close', closeAfterFlush(upstreamSocket))
    upstreamSocket.once('close', closeAfterFlush(client))
  }
}
