// The API server, as every part of the proxy reaches it: the pool for forwarded requests and the
// readiness probe, one connection per upgrade tunnel, one handshake to see its certificate. All of
// them use the credentials in the store now, and all are timed the same way.
import type { X509Certificate } from 'node:crypto'
import type { ClientRequest, OutgoingHttpHeaders } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { isIP } from 'node:net'
import { connect, createSecureContext, type SecureContext, type TLSSocket } from 'node:tls'
import { Agent, buildConnector, type Dispatcher } from 'undici'
import { unbracketed } from '../util/addresses.js'
import { sameClient, type CredentialBundle } from '../credentials/bundle.js'
import { openTunnel } from './connect-proxy.js'
import type { CredentialStore } from '../credentials/store.js'
import { UpstreamTimeout } from './failures.js'

export interface UpstreamOptions {
  connectTimeoutMs: number
  /** 0: no limit */
  responseTimeoutMs: number
}

// Idle pooled connections live this long. Long enough that bursts of calls reuse one TLS
// session; short enough to stay under the usual server-side idle limits (kube-apiserver: 90 s).
const KEEP_ALIVE_MS = 30_000

// The server's certificate from a handshake this recent stands for the server's certificate now:
// the expiry check takes it instead of making a handshake of its own.
const SEEN_FRESH_MS = 60_000

export class Upstream {
  /** fixed at start: the server the first credentials were for, and every later bundle is (binding.ts) */
  readonly url: URL
  readonly origin: string
  /** the name checked against the server certificate; an IP upstream is checked against its IP SANs */
  readonly serverName: string
  readonly #tlsServerName: string | undefined
  readonly #insecure: boolean
  /** an HTTP CONNECT proxy every connection goes through */
  readonly #proxy: URL | undefined
  readonly #options: UpstreamOptions
  readonly #store: CredentialStore
  /** the URL's path without its trailing slash: every target goes after it */
  readonly #base: string
  #agent: Agent
  /** the server's certificate from the latest handshake, pooled or probe */
  #seen: { certificate: X509Certificate; at: number } | undefined
  /**
   * One TLS context per set of credentials, shared by every connection made with it. Given the
   * PEM instead, Node.js parses the CA, certificate and key and builds a context for each
   * connection: CPU at every handshake, and memory held by every open watch.
   */
  readonly #contexts = new WeakMap<CredentialBundle, SecureContext>()
  #handshakeWaiters: Array<() => void> = []

  constructor (options: UpstreamOptions, store: CredentialStore) {
    const { server } = store.current
    this.#options = options
    this.#store = store
    this.url = server.url
    this.origin = server.url.origin
    this.#tlsServerName = server.tlsServerName
    this.#insecure = server.insecureSkipTlsVerify
    this.#proxy = server.proxy
    this.serverName = server.tlsServerName ?? unbracketed(server.url.hostname)
    this.#base = server.url.pathname.replace(/\/$/, '')
    this.#agent = this.#createAgent(store.current)
    store.onChange((bundle, previous) => this.#replace(bundle, previous))
  }

  /** The upstream URL without a trailing slash, as /-/status shows it. */
  get display (): string {
    return this.origin + this.#base
  }

  /** The path sent upstream for a target of the proxy's (a path and query starting with /). */
  path (target: string): string {
    return this.#base + target
  }

  /** How every connection to the upstream is made: the credentials in use now, the same checks. */
  tlsOptions (credentials: CredentialBundle = this.#store.current) {
    const host = unbracketed(this.url.hostname)
    return {
      host,
      port: Number(this.url.port || 443),
      secureContext: this.#context(credentials),
      // Verify unless the user said --insecure-skip-tls-verify: the server must present a certificate from --cacert for this name.
      rejectUnauthorized: !this.#insecure,
      // The name checked is --tls-server-name when set, else the host (SNI takes no IP; an IP is checked against IP SANs).
      ...(this.#tlsServerName ? { servername: this.#tlsServerName } : isIP(host) ? {} : { servername: host }),
      ALPNProtocols: ['http/1.1'],
    }
  }

  #context (credentials: CredentialBundle): SecureContext {
    let context = this.#contexts.get(credentials)
    if (!context) {
      context = createSecureContext({ ca: credentials.caPem, cert: credentials.certPem, key: credentials.keyPem })
      this.#contexts.set(credentials, context)
    }
    return context
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
      connect: this.#connector(credentials, connectTimeoutMs),
    })
  }

  /** undici's own connector (ours through a proxy), noting the certificate each new connection's server presents. */
  #connector (credentials: CredentialBundle, timeout: number): buildConnector.connector {
    const connectTls: buildConnector.connector = this.#proxy
      ? (_options, callback) => this.#openTls(credentials, timeout, (err, socket) => (err ? callback(err, null) : callback(null, socket!)))
      : buildConnector({ ...this.tlsOptions(credentials), timeout })
    return (options, callback) => connectTls(options, (...outcome) => {
      if (outcome[1]) {
        this.#saw((outcome[1] as TLSSocket).getPeerX509Certificate())
        for (const resolve of this.#handshakeWaiters.splice(0)) resolve()
      }
      callback(...outcome)
    })
  }

  #saw (certificate: X509Certificate | undefined): void {
    if (certificate) this.#seen = { certificate, at: Date.now() }
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

  /**
   * A TLS connection to the API server through the proxy: CONNECT, then the same TLS as a direct
   * connection, the whole within `timeout`. Calls back once, after the handshake.
   */
  #openTls (credentials: CredentialBundle, timeout: number, callback: (err: Error | null, socket?: TLSSocket) => void): void {
    const tls = this.tlsOptions(credentials)
    let socket: TLSSocket | undefined
    let done = false
    const finish = (err: Error | null) => {
      if (done) return
      done = true
      clearTimeout(timer)
      if (err) {
        tunnel?.destroy()
        socket?.destroy()
      }
      callback(err, err ? undefined : socket)
    }
    let tunnel: { destroy: () => void } | undefined
    const timer = setTimeout(() => finish(new UpstreamTimeout('connect')), timeout)
    try {
      tunnel = openTunnel(this.#proxy!, tls.host, tls.port, (err, raw) => {
        if (err || done) {
          raw?.destroy()
          finish(err)
          return
        }
        socket = connect({ ...tls, socket: raw })
        socket.once('secureConnect', () => finish(null))
        socket.on('error', (e) => finish(e))
      })
    } catch (err) {
      finish(err as Error)
    }
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
      ...this.tlsOptions(credentials),
      method,
      path: this.path(target),
      headers: this.#withCredentials({ ...headers }),
      // Through a proxy, the socket comes connected, its handshake done. (Node uses createConnection
      // only when no agent is given: `agent: false` would make a fresh one that connects directly.)
      ...(this.#proxy
        ? {
            createConnection: (_: unknown, created: (err: Error | null, socket: TLSSocket) => void): undefined => {
              this.#openTls(credentials, this.#options.connectTimeoutMs, (err, socket) => created(err, socket!))
            },
          }
        : { agent: false }),
    })
    let timer = setTimeout(() => outgoing.destroy(new UpstreamTimeout('connect')), this.#options.connectTimeoutMs)
    const connected = () => {
      clearTimeout(timer)
      if (this.#options.responseTimeoutMs > 0) {
        timer = setTimeout(() => outgoing.destroy(new UpstreamTimeout('response')), this.#options.responseTimeoutMs)
      }
    }
    outgoing.once('socket', (socket) => (this.#proxy ? connected() : socket.once('secureConnect', connected)))
    const stop = () => clearTimeout(timer)
    outgoing.once('error', stop)
    outgoing.once('upgrade', stop)
    outgoing.once('response', stop)
    return outgoing
  }

  /** Resolves when the pool next completes a connection, its handshake done. */
  nextHandshake (): Promise<void> {
    return new Promise((resolve) => this.#handshakeWaiters.push(resolve))
  }

  /**
   * The server's certificate, for the expiry check: the one a connection of ours was shown within
   * the last minute, else from a handshake made for it.
   */
  async serverCertificate (): Promise<X509Certificate> {
    if (this.#seen && Date.now() - this.#seen.at < SEEN_FRESH_MS) return this.#seen.certificate
    return this.#probeCertificate()
  }

  /** One TLS handshake, as the pool would make it, for the server's certificate. */
  #probeCertificate (): Promise<X509Certificate> {
    return new Promise((resolve, reject) => {
      const seen = (socket: TLSSocket) => {
        const cert = socket.getPeerX509Certificate()
        this.#saw(cert)
        socket.end()
        if (cert) resolve(cert)
        else reject(new Error('the upstream presented no certificate'))
      }
      if (this.#proxy) {
        this.#openTls(this.#store.current, this.#options.connectTimeoutMs, (err, socket) => (err ? reject(err) : seen(socket!)))
        return
      }
      const socket = connect(this.tlsOptions(), () => seen(socket))
      socket.setTimeout(this.#options.connectTimeoutMs, () => socket.destroy(new UpstreamTimeout('connect')))
      socket.on('error', reject)
    })
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
