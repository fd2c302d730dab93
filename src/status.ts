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

export function statusOf({ code, reason, message }: Refusal): Status {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }
}

/** A complete HTTP/1.1 response carrying a Status, for places with only a raw socket (CONNECT). */
function rawStatusResponse(refusal: Refusal): string {
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
export function endWithStatus(socket: Duplex, refusal: Refusal): void {
  socket.on('error', () => socket.destroy())
  if (!socket.writable) {
    socket.destroy()
    return
  }
  endThenLinger(socket, rawStatusResponse(refusal))
}

export function sendRefusal(reply: FastifyReply, refusal: Refusal): FastifyReply {
  return reply.code(refusal.code).type('application/json').send(statusOf(refusal))
}

/** The same Status, on a response Fastify has handed over (a forwarded request that failed). */
export function writeRefusal(res: ServerResponse, refusal: Refusal, connectionClose: boolean): void {
  const body = JSON.stringify(statusOf(refusal))
  res.writeHead(refusal.code, {
    // as Fastify writes the Status it sends itself
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    ...(connectionClose ? { connection: 'close' } : {}),
  })
  res.end(body)
}
