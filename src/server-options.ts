// What every Fastify server of the proxy shares.
import type { AddressInfo } from 'node:net'
import { LogController } from 'fastify'

export const serverOptions = () => ({
  // One access line per request (accounting.ts) instead of Fastify's two.
  logController: new LogController({ disableRequestLogging: true }),
  // No route has a JSON schema, so Fastify need not load ajv and its compilers (~50 ms of every start).
  schemaController: {
    compilersFactory: {
      buildValidator: () => () => { throw new Error('mtls-proxy routes have no schemas') },
      buildSerializer: () => () => { throw new Error('mtls-proxy routes have no schemas') },
    },
  },
})

/** The TCP port a server listens on; undefined before it listens, or on a Unix socket. */
export function portOf (server: { address: () => AddressInfo | string | null }): number | undefined {
  const address = server.address()
  return typeof address === 'object' && address ? address.port : undefined
}
