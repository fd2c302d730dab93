// The proxy's own endpoints, under /-/: answered here, never forwarded. The same four are served
// on the main listener and, with --status-address, on a listener of their own for probes and Prometheus.
import type { FastifyInstance } from 'fastify'
import type { Metrics } from './metrics.js'
import { sendRefusal } from './status.js'

export interface ReadyState {
  ready: boolean
  reason: string
}

export interface OwnEndpoints {
  readyState: () => ReadyState
  status: () => Record<string, unknown>
  metrics: Metrics
}

export const OWN_PATHS = ['/-/healthz', '/-/readyz', '/-/status', '/-/metrics']

export function registerOwnEndpoints (app: FastifyInstance, own: OwnEndpoints): void {
  app.get('/-/healthz', async (_request, reply) => reply.type('text/plain').send('ok'))
  app.get('/-/readyz', async (_request, reply) => {
    const state = own.readyState()
    if (state.ready) return reply.type('text/plain').send('ok')
    return sendRefusal(reply, { code: 503, reason: 'ServiceUnavailable', message: `not ready: ${state.reason}` })
  })
  app.get('/-/status', async (_request, reply) => reply.send(own.status()))
  app.get('/-/metrics', async (_request, reply) => reply.type(own.metrics.registry.contentType).send(await own.metrics.registry.metrics()))
  app.all('/-/*', async (request, reply) => sendRefusal(reply, {
    code: 404, reason: 'NotFound', message: `no such mtls-proxy endpoint: ${request.url} (there are ${OWN_PATHS.join(', ')})`,
  }))
}
