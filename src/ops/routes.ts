// The proxy's own endpoints under /-/, on the main listener and on the status listener alike: liveness,
// readiness (every cluster's state, clusters/readiness.ts), the /-/status report and the metrics.
import type { FastifyInstance } from 'fastify'
import type { CallerToken } from '../admission/caller-token.js'
import type { Clusters } from '../clusters/clusters.js'
import { sendError } from '../doors/status.js'
import type { Metrics } from './metrics.js'

/** The proxy's own endpoints, under /-/: answered here, never forwarded. */
export const OWN_PATHS = ['/-/healthz', '/-/readyz', '/-/status', '/-/metrics']

/** What the /-/ routes read. */
export interface OwnRoutesDeps {
  clusters: Clusters
  metrics: Metrics
  /** the token callers must present; while its file is broken nobody is let in, and the proxy is not ready */
  callerToken: CallerToken | undefined
}

/**
 * /-/healthz, /-/readyz, /-/status and /-/metrics, on the main listener and on the status listener
 * alike. Ready: the default cluster is; `/-/readyz?cluster=NAME` for one. /-/status reports the
 * default cluster, and each cluster when there are several.
 */
export function registerOwnRoutes (app: FastifyInstance, { clusters, metrics, callerToken }: OwnRoutesDeps): void {
  // Nobody can be let in while the callers' token cannot be read: not ready, whatever the clusters say.
  const refusingAll = () => {
    const state = callerToken?.state
    return state && 'broken' in state ? `every caller is refused: ${state.broken}` : undefined
  }
  app.get('/-/healthz', async (_request, reply) => reply.type('text/plain').send('ok'))
  app.get('/-/readyz', async (request, reply) => {
    const name = (request.query as Record<string, unknown>).cluster
    if (name !== undefined && typeof name !== 'string') {
      return sendError(reply, { httpStatus: 400, reason: 'BadRequest', message: 'give ?cluster=NAME once' })
    }
    const cluster = name === undefined ? clusters.default : clusters.get(name)
    if (!cluster) return sendError(reply, clusters.unknown(name!))
    const refusing = refusingAll()
    if (refusing) return sendError(reply, { httpStatus: 503, reason: 'ServiceUnavailable', message: `not ready: ${refusing}` })
    // Files fixed since it broke: asking is reason enough to try them (a plugin never used stays so).
    await cluster.retry()
    const state = cluster.state
    if (state.ready) return reply.type('text/plain').send('ok')
    const which = name === undefined ? '' : ` cluster '${cluster.name}'`
    return sendError(reply, { httpStatus: 503, reason: 'ServiceUnavailable', message: `not ready:${which} ${state.reason}` })
  })
  app.get('/-/status', async (_request, reply) => {
    const own = clusters.main.readiness.report()
    const refusing = refusingAll()
    const report = refusing ? { ...own, state: own.state === 'stopping' ? 'stopping' : 'not ready', reason: refusing } : own
    return reply.send(clusters.multi ? { ...report, clusters: clusters.all.map((c) => c.report()) } : report)
  })
  app.get('/-/metrics', async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.exposition()))
  app.all('/-/*', async (request, reply) => sendError(reply, {
    httpStatus: 404, reason: 'NotFound', message: `no such mtls-proxy endpoint: ${request.url} (there are ${OWN_PATHS.join(', ')})`,
  }))
}
