// The default cluster's first readiness probe, made before the proxy serves: a server that --cacert
// does not vouch for, or whose name does not match, is a configuration mistake that stops the start;
// one that is merely unreachable is not: a sidecar may start before the network does, so the proxy
// serves, not ready, and keeps trying. The probe's connection stays pooled, so the first request makes
// no handshake of its own.
import { setTimeout as delay } from 'node:timers/promises'
import type { Logger } from 'pino'
import { UsageError } from '../util/errors.js'
import { describeUpstreamError } from '../upstream/failures.js'
import type { ClusterParts } from './parts.js'

// Serving waits for the first probe's handshake, then at most this long for its answer: an
// upstream slow to answer is for readiness to report, not a reason to keep the port closed.
const ANSWER_WAIT_MS = 1_000

/** Resolves once the proxy may serve; rejects with a UsageError when the settings are wrong. */
export async function checkUpstream (parts: ClusterParts, connectTimeoutMs: number, logger: Logger): Promise<void> {
  const { upstream, readiness } = parts
  const timers = new AbortController()
  let handshake = false
  const patience = Promise.race([
    upstream.nextHandshake().then(() => {
      handshake = true
      return delay(ANSWER_WAIT_MS, undefined, { signal: timers.signal })
    }),
    // (the pool's own connect timeout normally ends the probe first)
    delay(connectTimeoutMs + ANSWER_WAIT_MS, undefined, { signal: timers.signal }),
  ]).catch(() => {})
  const outcome = await readiness.probeFirst(patience)
  timers.abort()
  const notReachable = (reason: string) =>
    logger.warn({ upstream: upstream.origin, reason }, `upstream not reachable yet (${reason}); serving anyway, not ready until it is`)
  if (!outcome) {
    if (!handshake) notReachable(`no TLS handshake within ${connectTimeoutMs / 1000} s (--connect-timeout)`)
    return
  }
  const { error, failure } = outcome
  if (error === undefined) return
  const described = describeUpstreamError(error, upstream)
  if (described.misconfigured) throw new UsageError(described.message)
  notReachable(failure!)
}
