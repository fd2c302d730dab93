// A listener for kubelet probes and Prometheus (--status-address): the /-/ endpoints and nothing
// else, never proxying. Its share of the guard: no token (probes send none) and no path rules (it
// forwards nothing); the browser checks always; the Host check where it listens on loopback.
import Fastify, { type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { isLoopback } from '../util/addresses.js'
import { installAdmission } from '../admission/hook.js'
import { readTarget } from '../admission/target.js'
import { checkRequest, hostPatterns, type GuardOptions } from '../admission/guard.js'
import { OWN_PATHS, registerOwnRoutes, type OwnRoutesDeps } from './routes.js'
import { portOf, serverOptions } from '../doors/listener.js'
import { installErrorHandlers } from '../doors/status.js'

// Any Host a request can carry: kubelet probes and Prometheus send the pod IP they dialled.
const ANY = [/^/]

/**
 * host: where it listens; acceptHosts: the Host patterns as configured (not the main listener's,
 * which add that listener's own address).
 */
export function buildStatusListener (
  logger: Logger, own: OwnRoutesDeps, where: { host: string; acceptHosts: RegExp[] }, guard: GuardOptions
): FastifyInstance {
  const app = Fastify(serverOptions(logger))
  const { host, acceptHosts } = where
  const options: GuardOptions = {
    ...guard,
    acceptHosts: isLoopback(host) ? hostPatterns(acceptHosts, host) : ANY,
    callerToken: () => undefined,
    acceptPaths: ANY,
    rejectPaths: [],
    rejectMethods: [],
    listenPort: () => portOf(app.server),
    scheme: 'http',
    admitOwnOrigin: false,
  }
  // No cluster prefix here: the target is read as one cluster's.
  installAdmission(app, (req) => checkRequest(readTarget(req.url ?? '/'), req, options, 'request'))
  registerOwnRoutes(app, own)
  installErrorHandlers(app, () => `the status listener serves only ${OWN_PATHS.join(', ')}; it forwards nothing`)
  return app
}
