// The guard's decision, put in front of a Fastify server: every request is judged before any route
// sees it, a refused one is answered and its connection ended, an admitted one is invited to send
// its body (100 Continue) only then. The main listener and the status listener both use it.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Cors } from './cors.js'
import { bodyPending, dropUnreadBody } from '../doors/linger.js'
import { endSocketWithError, sendError, type ErrorAnswer } from '../doors/status.js'

/** Who may use the listener: an error to answer, or undefined to admit. */
export type Admit = (req: IncomingMessage) => ErrorAnswer | undefined

/** CORS for the listed origins: their preflights judged by `preflight` and answered here, their answers marked. */
export interface CorsAdmission {
  cors: Cors
  preflight: Admit
}

/** closing: shutting down, so every refused connection ends with its answer. */
export function installAdmission (
  app: FastifyInstance, admit: Admit, closing: () => boolean = () => false, cors?: CorsAdmission
): void {
  expectContinueAfterTheGuard(app)
  app.addHook('onRequest', (request, reply, done) => {
    if (cors?.cors.isPreflight(request.raw)) {
      answerPreflight(request, reply, cors, closing())
      return
    }
    // A listed origin's page may read the answer, a refusal (a missing token, a rejected path) included.
    cors?.cors.mark(request.raw, reply.raw)
    // originalUrl: the target before rewriteUrl turned an absolute-form target into a path.
    const refusal = admit(request.raw)
    if (!refusal) {
      continueIfAsked(request, reply)
      done()
      return
    }
    // Answered here: the request goes no further, so done() is not called.
    refuse(request, reply, refusal, closing())
  })
  // Every answer of the server's own (forwarded ones are hijacked and never pass here): a body still arriving is bounded.
  app.addHook('onSend', (request, reply, payload, done) => {
    dropUnreadBody(request.raw)
    const lines = cors?.cors.headers(reply.raw)
    if (lines) for (let i = 0; i < lines.length; i += 2) reply.header(lines[i]!, lines[i + 1])
    done(null, payload)
  })
}

/** A preflight is never forwarded: 204 with the CORS headers, or the usual refusal. */
function answerPreflight (request: FastifyRequest, reply: FastifyReply, { cors, preflight }: CorsAdmission, closing: boolean): void {
  const refusal = preflight(request.raw)
  if (refusal) {
    refuse(request, reply, refusal, closing)
    return
  }
  const headers = cors.preflight(request.raw, request.headers.origin!)
  for (let i = 0; i < headers.length; i += 2) reply.header(headers[i]!, headers[i + 1])
  reply.code(204).send()
}

/** CONNECT would make the proxy a tunnel to anywhere. Node hands it to this event, outside Fastify. */
export function refuseConnect (app: FastifyInstance): void {
  app.server.on('connect', (_req: IncomingMessage, socket: Socket) => {
    endSocketWithError(socket, {
      httpStatus: 405,
      reason: 'MethodNotAllowed',
      message: 'CONNECT is refused: mtls-proxy is not an open proxy'
    })
  })
}

/**
 * Node answers `Expect: 100-continue` itself unless told otherwise, before any hook has run: it
 * would invite the body of a request about to be refused. The guard sends it instead, once it admits.
 */
function expectContinueAfterTheGuard (app: FastifyInstance): void {
  const server = app.server
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => server.emit('request', req, res))
}

function continueIfAsked (request: FastifyRequest, reply: FastifyReply): void {
  // Node passes on only Expect: 100-continue from HTTP/1.1 clients (others got 417 from it already).
  if (request.headers.expect !== undefined && request.raw.httpVersionMinor === 1) reply.raw.writeContinue()
}

/**
 * A refused client keeps no connection: it is closed after the answer, or, while the body is still
 * arriving, that is read within the linger bounds first (closing at once could reset the answer away).
 */
function refuse (request: FastifyRequest, reply: FastifyReply, refusal: ErrorAnswer, closing: boolean): void {
  if (closing || !bodyPending(request.raw)) reply.header('connection', 'close')
  sendError(reply, refusal)
}
