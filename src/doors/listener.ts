// The Fastify servers of the proxy: what they share, how the main one is made (plain HTTP, or
// HTTPS with --listen-cert), and how its certificate follows a rotation.
import type { IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Server as TlsServer } from 'node:tls'
import Fastify, { LogController, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { sameListener } from '../credentials/bundle.js'
import type { CredentialStore } from '../credentials/store.js'
import { quieter, requestLogger } from '../util/logger.js'
import { ConnectionTable, type ConnectionLimits } from './connections.js'

export const serverOptions = (logger: Logger) => ({
  loggerInstance: quieter(logger),
  childLoggerFactory: requestLogger,
  // One access line per request (ops/accounting.ts) instead of Fastify's two.
  logController: new LogController({ disableRequestLogging: true }),
  // No route has a JSON schema, so Fastify need not load ajv and its compilers (~50 ms of every start).
  schemaController: {
    compilersFactory: {
      buildValidator: () => () => { throw new Error('mtls-proxy routes have no schemas') },
      buildSerializer: () => () => { throw new Error('mtls-proxy routes have no schemas') },
    },
  },
})

/**
 * The main listener's server, serving HTTPS when the store holds a listener key pair; `events` hears
 * of its rotation. `forward`: what a request is routed and forwarded as, its target read once
 * (normalised, any cluster prefix removed).
 */
export function createMainServer (
  logger: Logger, credentials: CredentialStore, limits: ConnectionLimits, events: Logger, forward: (req: IncomingMessage) => string
): FastifyInstance {
  const listener = credentials.current.listener
  const app = Fastify({
    ...serverOptions(logger),
    // Our own 503 (doors/shutdown.ts) is a Status object; Fastify's default is not.
    return503OnClosing: false,
    // Watches and uploads may take as long as they take; slow-header protection stays on (Node's 60 s).
    requestTimeout: 0,
    // Routed and forwarded: the normalised target the guard judged (absolute-form reduced to its path).
    rewriteUrl: (req) => forward(req),
    // HTTPS on the listener (--listen-cert): what clients like kubectl need before they send a token.
    ...(listener ? { https: { cert: listener.certPem, key: listener.keyPem } } : {}),
  })
  // Past --max-connections an idle connection makes room, or the new one is refused; open watches are never cut.
  new ConnectionTable(limits).install(app.server)
  if (listener) {
    // Fastify's type says http.Server whatever the options; given `https` it made an https.Server, a TLS server.
    if (!(app.server instanceof TlsServer)) throw new Error('Fastify was given a listener key pair and made no TLS server')
    followListenerCertificate(app.server, credentials, events)
  }
  return app
}

/**
 * New connections to the listener get a rotated certificate; open ones keep theirs. Checked
 * servable when loaded; should OpenSSL refuse it anyway, the old certificate goes on serving.
 */
function followListenerCertificate (server: TlsServer, credentials: CredentialStore, logger: Logger): void {
  credentials.onChange(({ listener }, previous) => {
    // A reload of the client's certificate alone leaves the listener's context as it is.
    if (!listener || sameListener(listener, previous.listener)) return
    try {
      server.setSecureContext({ cert: listener.certPem, key: listener.keyPem })
    } catch (err) {
      const message = (err as Error).message
      logger.error({ err: message }, `the new --listen-cert could not be put in use; still serving the previous one: ${message}`)
    }
  })
}

/** The TCP port a server listens on; undefined before it listens, or on a Unix socket. */
export function portOf (server: { address: () => AddressInfo | string | null }): number | undefined {
  const address = server.address()
  return typeof address === 'object' && address ? address.port : undefined
}
