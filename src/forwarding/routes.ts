// The forwarded routes: @fastify/http-proxy registers every forwarded method and path, and our
// forwarder (forwarding/relay.ts) carries each request. What an answer or a failure means for the rest of
// the proxy is decided here: readiness, metrics, the access line and the hint after a 401.
import proxy from '@fastify/http-proxy'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Dispatcher } from 'undici'
import type { ClusterParts } from '../clusters/parts.js'
import type { Cors } from '../admission/cors.js'
import { clientIdentity } from '../credentials/bundle.js'
import { createForwarder } from './relay.js'
import { FORWARDED_METHODS } from '../admission/guard.js'
import type { Metrics } from '../ops/metrics.js'
import type { ErrorAnswer } from '../doors/status.js'
import type { Upstream } from '../upstream/upstream.js'
import { describeUpstreamError } from '../upstream/failures.js'
import type { OpenWatches } from './watches.js'

export interface ForwardingDeps {
  /** the default cluster's upstream: its origin is what @fastify/http-proxy is registered for */
  upstream: Upstream
  /** the cluster a request is for */
  cluster: (request: FastifyRequest) => ClusterParts | Promise<ClusterParts | ErrorAnswer>
  /** the request streams until stopped */
  watch: (request: FastifyRequest) => boolean
  metrics: Metrics
  watches: OpenWatches
  closing: () => boolean
  clientBodyTimeoutMs: number
  cors: Cors | undefined
  /** keeps an answer's Location in its cluster, or refuses the answer (forwarding/relay.ts) */
  confine: (request: FastifyRequest, headers: string[], cluster: ClusterParts, statusCode: number) => ErrorAnswer | undefined
}

/**
 * What reply-from (which http-proxy registers) takes as its pool instead of making one of its own:
 * anything with undici's `request`. The handler below carries every request, so it is never asked;
 * were it asked, that would be our mistake, said at once rather than sent with the credentials.
 */
type ReplyFromPool = { request: Dispatcher['request'] }
const idlePool: ReplyFromPool = { request: () => { throw new Error('reply-from\'s pool was asked to send a request: the forwarder carries every request') } }

export async function registerForwarding (app: FastifyInstance, deps: ForwardingDeps): Promise<void> {
  const { upstream, metrics } = deps
  // Fastify would parse JSON and text bodies (and drop a charset); a proxy passes every body on as a stream.
  app.removeAllContentTypeParsers()
  await app.register(proxy, {
    // The origin alone: each cluster's own path goes in front of the target (Upstream.path), not http-proxy's.
    upstream: upstream.origin,
    httpMethods: FORWARDED_METHODS,
    undici: idlePool,
    disableRequestLogging: true,
    handler: createForwarder({
      cluster: deps.cluster,
      watch: deps.watch,
      watches: deps.watches,
      closing: deps.closing,
      clientBodyTimeoutMs: deps.clientBodyTimeoutMs,
      ...(deps.cors ? { cors: deps.cors } : {}),
      confine: deps.confine,
      onAnswer: (request, statusCode, { credentials, readiness }) => {
        readiness.recordSuccess()
        if (statusCode === 401) {
          const { current } = credentials
          const fields = { url: request.url, identity: clientIdentity(current), expires: current.expiresAt?.toISOString() }
          // The caller gets this 401 as it is; the next request goes out with what the plugin gives now.
          if (credentials.renew('upstream 401')) {
            request.log.warn(fields, 'upstream answered 401 Unauthorized: running the exec plugin again for a new credential')
          } else {
            const what = current.clientCertificate ? 'the client certificate' : 'the token'
            request.log.warn(fields, `upstream answered 401 Unauthorized: ${what} may have expired or been revoked (consoles can revoke a credential); get a new one`)
          }
        }
      },
      onFailure: (request, err, cluster) => {
        const failure = describeUpstreamError(err, cluster.upstream)
        request.failure = failure.message
        metrics.upstreamError(failure.cause, cluster.name)
        if (failure.cause !== 'timeout') cluster.readiness.recordFailure(failure.message)
        return failure
      },
    }),
  })
}
