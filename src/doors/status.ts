import type { ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { endThenLinger } from './linger.js'

// The errors the proxy answers itself (refusals, upstream failures, its own 404s and 503s), each
// as a Kubernetes Status object, so kubectl and client-go print "Error from server (Reason):
// message" instead of an opaque body. (The /-/status report is clusters/readiness.ts's.)
interface Status {
  kind: 'Status'
  apiVersion: 'v1'
  metadata: Record<string, never>
  status: 'Failure'
  message: string
  reason: string
  code: number
}

/** An error answered to a client: its HTTP status, the Status reason (`Forbidden`) and what to do. */
export interface ErrorAnswer {
  httpStatus: number
  reason: string
  message: string
}

function statusOf ({ httpStatus, reason, message }: ErrorAnswer): Status {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code: httpStatus }
}

/** A complete HTTP/1.1 response carrying a Status, for places with only a raw socket (CONNECT). */
function rawStatusResponse (answer: ErrorAnswer): string {
  const body = JSON.stringify(statusOf(answer))
  return [
    `HTTP/1.1 ${answer.httpStatus} ${answer.reason}`,
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    '',
    body,
  ].join('\r\n')
}

/**
 * Answers on a raw socket Node has handed over (CONNECT, an upgrade refused or failed) and closes it.
 * A client that resets the connection meanwhile is no error of ours: without the listener, the
 * write's ECONNRESET would be thrown and end the process.
 */
export function endSocketWithError (socket: Duplex, answer: ErrorAnswer): void {
  socket.on('error', () => socket.destroy())
  if (!socket.writable) {
    socket.destroy()
    return
  }
  endThenLinger(socket, rawStatusResponse(answer))
}

// kubectl's discovery reads the two roots, /api and /apis, with client-go's Raw(), which takes an
// error's message only from a text body: a Status there comes out as `("unknown")`, so a cold
// cache hid every failure. Everywhere else client-go decodes the Status.
const DISCOVERY_ROOTS = /^\/apis?\/?(?:\?|$)/

/** /api or /apis: where kubectl's discovery reads an error as text (and takes a 404 for "no such group"). */
export function isDiscoveryRoot (url: string): boolean {
  return DISCOVERY_ROOTS.test(url)
}

/** The body and type of an error answer, for the path it answers. */
function errorBody (answer: ErrorAnswer, url: string): { type: string; body: string } {
  if (isDiscoveryRoot(url)) return { type: 'text/plain; charset=utf-8', body: `${answer.message}\n` }
  // as Fastify writes the JSON it sends itself
  return { type: 'application/json; charset=utf-8', body: JSON.stringify(statusOf(answer)) }
}

export function sendError (reply: FastifyReply, answer: ErrorAnswer): FastifyReply {
  const { type, body } = errorBody(answer, reply.request.url)
  return reply.code(answer.httpStatus).type(type).send(body)
}

/** The same, on a response Fastify has handed over (a forwarded request that failed). */
export function writeError (res: ServerResponse, answer: ErrorAnswer, connectionClose: boolean, url: string): void {
  const { type, body } = errorBody(answer, url)
  res.writeHead(answer.httpStatus, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    ...(connectionClose ? { connection: 'close' } : {}),
  })
  res.end(body)
}

/**
 * Errors nobody answered otherwise: an exception in a route (a 4xx Fastify raised, else 500) and a
 * path with no route, each as a Status.
 */
export function installErrorHandlers (app: FastifyInstance, notFound: (url: string) => string): void {
  app.setErrorHandler((err: Error & { statusCode?: number }, request, reply) => {
    const httpStatus = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500
    if (httpStatus === 500) request.log.error({ err }, 'unexpected error')
    return sendError(reply, { httpStatus, reason: httpStatus === 500 ? 'InternalError' : 'BadRequest', message: err.message })
  })
  app.setNotFoundHandler((request, reply) => sendError(reply, { httpStatus: 404, reason: 'NotFound', message: notFound(request.url) }))
}
