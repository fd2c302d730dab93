// The API server, as every part of the proxy reaches it: what is sent on the connections connector.ts
// makes. The pool for forwarded requests and the readiness probe (swapped when the credentials change),
// one connection per upgrade tunnel, the path every target goes after, the bearer token on every
// request; all use the credentials in the store now, and all are timed the same way.
import type { X509Certificate } from 'node:crypto'
import type { ClientRequest, OutgoingHttpHeaders } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { TLSSocket } from 'node:tls'
import { Agent, type Dispatcher } from 'undici'
import { sameClient, type CredentialBundle } from '../credentials/bundle.js'
import type { CredentialStore } from '../credentials/store.js'
import { Connector, type ConnectorOptions } from './connector.js'
import { UpstreamTimeout } from './failures.js'

export interface UpstreamOptions extends ConnectorOptions {
  /** 0: no limit */
  responseTimeoutMs: number
}

// Idle pooled connections live this long. Long enough that bursts of calls reuse one TLS
// session; short enough to stay under the usual server-side idle limits (kube-apiserver: 90 s).
const KEEP_ALIVE_MS = 30_000

export class Upstream {
  /** fixed at start: the server the first credentials were for, and every later bundle is (binding.ts) */
  readonly url: URL
  readonly origin: string
  /** the name checked against the server certificate; an IP upstream is checked against its IP SANs */
  readonly serverName: string
  readonly #options: UpstreamOptions
  readonly #store: CredentialStore
  readonly #connector: Connector
  /** the URL's path without its trailing slash: every target goes after it */
  readonly #base: string
  #agent: Agent

  constructor (options: UpstreamOptions, store: CredentialStore) {
    const { server } = store.current
    this.#options = options
    this.#store = store
    this.#connector = new Connector(server, options)
    this.url = server.url
    this.origin = server.url.origin
    this.serverName = this.#connector.serverName
    this.#base = server.url.pathname.replace(/\/$/, '')
    this.#agent = this.#createAgent(store.current)
    store.onChange((bundle, previous) => this.#replace(bundle, previous))
  }

  /** The upstream URL without a trailing slash, as /-/status shows it. */
  /** a client certificate goes with the connections now (else a bearer token alone): failures are worded for it */
  get clientCertificate (): boolean {
    return this.#store.current.clientCertificate !== undefined
  }

  get display (): string {
    return this.origin + this.#base
  }

  /** The path sent upstream for a target of the proxy's (a path and query starting with /). */
  path (target: string): string {
    return this.#base + target
  }

  #createAgent (credentials: CredentialBundle): Agent {
    return new Agent({
      // No cap on connections: every open watch holds one, and a cap would queue new requests behind them.
      connections: null,
      pipelining: 1,
      keepAliveTimeout: KEEP_ALIVE_MS,
      keepAliveMaxTimeout: KEEP_ALIVE_MS,
      headersTimeout: this.#options.responseTimeoutMs,
      // No body timeout: watches and `logs -f` stream for hours.
      bodyTimeout: 0,
      ...this.#connector.poolOptions(credentials),
    })
  }

  /**
   * New requests use the new credentials at once. Requests and watches already on the old pool
   * finish there; it closes once they have drained, so a rotation drops nothing in flight.
   */
  #replace (bundle: CredentialBundle, previous: CredentialBundle): void {
    // Only the listener's pair changed: the pooled connections are still the right ones.
    if (sameClient(previous, bundle)) return
    const old = this.#agent
    this.#agent = this.#createAgent(bundle)
    void old.close()
  }

  /** The credentials go with each request: the token as a header (the certificate went with the connection). */
  #withCredentials<T extends Record<string, unknown>> (headers: T): T {
    const token = this.#store.current.bearerToken
    if (token !== undefined) (headers as Record<string, unknown>).authorization = `Bearer ${token}`
    if (this.#store.current.server.disableCompression) delete (headers as Record<string, unknown>)['accept-encoding']
    return headers
  }

  /** The readiness probe's requests. */
  request (options: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData> {
    return this.#agent.request({ ...options, headers: this.#withCredentials({ ...(options.headers as Record<string, string>) }) })
  }

  /**
   * The proxied requests' path: the handler gets each response as it is parsed, with no stream in
   * between. `headers` is the flat list forwarding/headers.ts made; the token is added to it here.
   */
  dispatch (options: Dispatcher.DispatchOptions & { headers: string[] }, handler: Dispatcher.DispatchHandler): void {
    const { bearerToken } = this.#store.current
    if (bearerToken !== undefined) options.headers.push('authorization', `Bearer ${bearerToken}`)
    if (this.#store.current.server.disableCompression) options.headers = withoutHeader(options.headers, 'accept-encoding')
    this.#agent.dispatch(options, handler)
  }

  /**
   * A request on a connection of its own (an upgrade: the connection becomes the tunnel). Connecting,
   * then waiting for the answer, are each timed; what follows the answer never is.
   */
  upgradeRequest (method: string, target: string, headers: OutgoingHttpHeaders): ClientRequest {
    const credentials = this.#store.current
    const outgoing = httpsRequest({
      method,
      path: this.path(target),
      headers: this.#withCredentials({ ...headers }),
      // The socket comes connected, its handshake done. (Node uses createConnection only when no
      // agent is given: `agent: false` would make a fresh one that connects by itself.)
      createConnection: (_: unknown, created: (err: Error | null, socket: TLSSocket) => void): undefined => {
        this.#connector.open(credentials, (err, socket) => created(err, socket!))
      },
    })
    let timer = setTimeout(() => outgoing.destroy(new UpstreamTimeout('connect')), this.#options.connectTimeoutMs)
    const connected = () => {
      clearTimeout(timer)
      if (this.#options.responseTimeoutMs > 0) {
        timer = setTimeout(() => outgoing.destroy(new UpstreamTimeout('response')), this.#options.responseTimeoutMs)
      }
    }
    outgoing.once('socket', connected)
    const stop = () => clearTimeout(timer)
    outgoing.once('error', stop)
    outgoing.once('upgrade', stop)
    outgoing.once('response', stop)
    return outgoing
  }

  /** Resolves when the pool next completes a connection, its handshake done. */
  nextHandshake (): Promise<void> {
    return this.#connector.nextHandshake()
  }

  /** The server's certificate, for the expiry check (connector.ts says how recent). */
  serverCertificate (): Promise<X509Certificate> {
    return this.#connector.serverCertificate(this.#store.current)
  }

  async close (): Promise<void> {
    await this.#agent.destroy()
  }
}

/** A flat header list (name, value, …) without one header. */
function withoutHeader (headers: string[], lower: string): string[] {
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2) if (headers[i] !== lower) out.push(headers[i]!, headers[i + 1]!)
  return out
}
