// Every request and tunnel ends here: counted in the metrics and, unless --no-access-log, written
// as one access line. Ordinary requests are recorded when their response closes; tunnels call
// `record` themselves.
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { Metrics, RequestRecord } from './metrics.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** why the request failed, for the access line */
    failure?: string
  }
}

// Wire bytes already counted for earlier requests on a keep-alive connection.
const counted = new WeakMap<Socket, { read: number; written: number }>()

/** The bytes a connection carried since its previous request was recorded, into `r`. */
function addWireBytes (r: RequestRecord, socket: Socket): void {
  const now = { read: socket.bytesRead, written: socket.bytesWritten }
  const before = counted.get(socket)
  counted.set(socket, now)
  r.bytesIn = now.read - (before?.read ?? 0)
  r.bytesOut = now.written - (before?.written ?? 0)
}

export class Accounting {
  readonly #metrics: Metrics
  /** undefined: --no-access-log */
  readonly #accessLog: Logger | undefined
  readonly #clusterOf: (req: IncomingMessage) => string
  /** several clusters: each access line names its own */
  readonly #showCluster: boolean

  constructor (metrics: Metrics, logger: Logger, accessLog: boolean, clusters: { of: (req: IncomingMessage) => string; show: boolean }) {
    this.#metrics = metrics
    this.#clusterOf = clusters.of
    this.#showCluster = clusters.show
    // The access line holds only the fields of a RequestRecord, never a header, so it skips the
    // redaction pass, which tripled the cost of each line.
    this.#accessLog = accessLog ? logger.child({}, { redact: [] }) : undefined
  }

  record (r: RequestRecord, reqId?: string): void {
    this.#metrics.request(r)
    if (!this.#accessLog) return
    // Built field by field: copying the record with rest and spread cost more than the line's own JSON.
    const line: Record<string, unknown> = { reqId, method: r.method, url: r.url, status: r.status }
    if (r.upgrade !== undefined) line.upgrade = r.upgrade
    line.bytesIn = r.bytesIn
    line.bytesOut = r.bytesOut
    if (r.aborted) line.aborted = true
    if (r.error !== undefined) line.error = r.error
    if (this.#showCluster) line.cluster = r.cluster
    line.ms = Math.round(r.duration * 10_000) / 10
    this.#accessLog.info(line, 'request')
  }

  /** Counts and records every request the server answers, refused ones included: the first hook of all. */
  install (app: FastifyInstance): void {
    const metrics = this.#metrics
    // Callback style: on the path of every request, a promise per hook is measurable.
    app.addHook('onRequest', (request, reply, done) => {
      metrics.inFlight++
      // Captured now: by 'close' the response may already be detached from its socket.
      const socket = request.raw.socket
      // On 'close' rather than Fastify's onResponse, which never fires for a watch the client ended.
      reply.raw.once('close', () => {
        metrics.inFlight--
        const r: RequestRecord = {
          method: request.method,
          url: request.url,
          status: reply.statusCode,
          duration: reply.elapsedTime / 1000,
          bytesIn: 0,
          bytesOut: 0,
          cluster: this.#clusterOf(request.raw),
        }
        addWireBytes(r, socket)
        if (!reply.raw.writableFinished) r.aborted = true
        if (request.failure) r.error = request.failure
        this.record(r, request.id)
      })
      done()
    })
  }
}
