import type { ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyReply } from 'fastify'
import { endThenLinger } from './linger.js'

// Every error the proxy itself answers is a Kubernetes Status object, so kubectl and client-go
// print "Error from server (Reason): message" instead of an opaque body.
export interface Status {
  kind: 'Status'
  apiVersion: 'v1'
  metadata: Record<string, never>
  status: 'Failure'
  message: string
  reason: string
  code: number
}

export interface Refusal {
  code: number
  reason: string
  message: string
}

export function statusOf ({ code, reason, message }: Refusal): Status {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }
}

/** A complete HTTP/1.1 response carrying a Status, for places with only a raw socket (CONNECT). */
function rawStatusResponse (refusal: Refusal): string {
  const body = JSON.stringify(statusOf(refusal))
  return [
    `HTTP/1.1 ${refusal.code} ${refusal.reason}`,
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
export function endWithStatus (socket: Duplex, refusal: Refusal): void {
  socket.on('error', () => socket.destroy())
  if (!socket.writable) {
    socket.destroy()
    return
  }
  endThenLinger(socket, rawStatusResponse(refusal))
}

// kubectl's discovery reads the two roots, /api and /apis, with client-go's Raw(), which takes an
// error's message only from a text body: a Status there comes out as `("unknown")`, so a cold
// cache hid every failure. Everywhere else client-go decodes the Status.
const DISCOVERY_ROOTS = /^\/apis?\/?(?:\?|$)/

/** The body and type of a refusal, for the path it answers. */
function refusalBody (refusal: Refusal, url: string): { type: string; body: string } {
  if (DISCOVERY_ROOTS.test(url)) return { type: 'text/plain; charset=utf-8', body: `${refusal.message}\n` }
  // as Fastify writes the JSON it sends itself
  return { type: 'application/json; charset=utf-8', body: JSON.stringify(statusOf(refusal)) }
}

export function sendRefusal (reply: FastifyReply, refusal: Refusal): FastifyReply {
  const { type, body } = refusalBody(refusal, reply.request.url)
  return reply.code(refusal.code).type(type).send(body)
}

/** The same, on a response Fastify has handed over (a forwarded request that failed). */
export function writeRefusal (res: ServerResponse, refusal: Refusal, connectionClose: boolean, url: string): void {
  const { type, body } = refusalBody(refusal, url)
  res.writeHead(refusal.code, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    ...(connectionClose ? { connection: 'close' } : {}),
  })
  res.end(body)
}
