// The connection pool to the API server. Requests go through `request`, which always uses the
// current pool, so a later certificate rotation can swap the pool without re-registering routes.
import { isIP } from 'node:net'
import { Agent, type Dispatcher } from 'undici'
import { sameClient, type CredentialBundle } from './credentials.js'

export interface TlsConnectOptions {
  host: string
  port: number
  ca: string | undefined
  cert: string
  key: string
  rejectUnauthorized: boolean
  servername?: string
  ALPNProtocols: string[]
}

export interface UpstreamOptions {
  url: URL
  tlsServerName: string | undefined
  connectTimeoutMs: number
  /** 0: no limit */
  responseTimeoutMs: number
  insecureSkipTlsVerify: boolean
}

/** How every connection to the upstream is made: pooled, tunnels and probes alike. */
export function upstreamTlsOptions (
  options: Pick<UpstreamOptions, 'url' | 'tlsServerName' | 'insecureSkipTlsVerify'>,
  credentials: CredentialBundle
): TlsConnectOptions {
  const host = options.url.hostname.replace(/^\[|\]$/g, '')
  return {
    host,
    port: Number(options.url.port || 443),
    ca: credentials.caPem,
    cert: credentials.certPem,
    key: credentials.keyPem,
    // Verify unless the user said --insecure-skip-tls-verify: the server must present a certificate from --cacert for this name.
    rejectUnauthorized: !options.insecureSkipTlsVerify,
    // The name checked is --tls-server-name when set, else the host (SNI takes no IP; an IP is checked against IP SANs).
    ...(options.tlsServerName ? { servername: options.tlsServerName } : isIP(host) ? {} : { servername: host }),
    ALPNProtocols: ['http/1.1'],
  }
}

// Idle pooled connections live this long. Long enough that bursts of calls reuse one TLS
// session; short enough to stay under the usual server-side idle limits (kube-apiserver: 90 s).
const KEEP_ALIVE_MS = 30_000

export class Upstream {
  readonly url: URL
  readonly origin: string
  #agent: Agent
  #credentials: CredentialBundle
  readonly #options: UpstreamOptions

  constructor (options: UpstreamOptions, credentials: CredentialBundle) {
    this.#options = options
    this.url = options.url
    this.origin = options.url.origin
    this.#credentials = credentials
    this.#agent = this.#createAgent(credentials)
  }

  /** Name checked against the server certificate; an IP upstream is checked against its IP SANs. */
  get serverName (): string {
    return this.#options.tlsServerName ?? this.url.hostname.replace(/^\[|\]$/g, '')
  }

  /** For connections made outside the pool (upgrade tunnels): the current credentials, the same checks. */
  tlsOptions (): TlsConnectOptions {
    return upstreamTlsOptions(this.#options, this.#credentials)
  }

  #createAgent (credentials: CredentialBundle): Agent {
    const { connectTimeoutMs, responseTimeoutMs } = this.#options
    return new Agent({
      // No cap on connections: every open watch holds one, and a cap would queue new requests behind them.
      connections: null,
      pipelining: 1,
      keepAliveTimeout: KEEP_ALIVE_MS,
      keepAliveMaxTimeout: KEEP_ALIVE_MS,
      headersTimeout: responseTimeoutMs,
      // No body timeout: watches and `logs -f` stream for hours.
      bodyTimeout: 0,
      connect: {
        ...upstreamTlsOptions(this.#options, credentials),
        timeout: connectTimeoutMs,
      },
    })
  }

  /**
   * New requests use the new credentials at once. Requests and watches already on the old pool
   * finish there; it closes once they have drained, so a rotation drops nothing in flight.
   */
  replace (credentials: CredentialBundle): void {
    const current = this.#credentials
    this.#credentials = credentials
    // Only the listener's pair changed: the pooled connections are still the right ones.
    if (sameClient(current, credentials)) return
    const old = this.#agent
    this.#agent = this.#createAgent(credentials)
    void old.close()
  }

  /** The readiness probe's requests. */
  request (options: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData> {
    return this.#agent.request(options)
  }

  /** The proxied requests' path: the handler gets each response as it is parsed, with no stream in between. */
  dispatch (options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): void {
    this.#agent.dispatch(options, handler)
  }

  async close (): Promise<void> {
    await this.#agent.destroy()
  }
}
