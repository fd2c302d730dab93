// How a connection to the API server is made: TLS with the credentials given (one secure context per
// bundle), the server's name checked, through the CONNECT proxy when there is one, within
// --connect-timeout; and the certificate the server presented, noted. The pool's connections and the
// sockets of upgrades and of the certificate probe are all made here, so a new transport (HTTP/2's
// ALPN `h2` and undici's `allowH2`, say) is a change to this file.
import type { X509Certificate } from 'node:crypto'
import { isIP, type Socket } from 'node:net'
import { connect, createSecureContext, type ConnectionOptions, type SecureContext, type TLSSocket } from 'node:tls'
import { buildConnector, type Agent } from 'undici'
import { unbracketed } from '../util/addresses.js'
import type { CredentialBundle } from '../credentials/bundle.js'
import type { ServerEndpoint } from '../credentials/source.js'
import { openTunnel } from './connect-proxy.js'
import { UpstreamTimeout } from './failures.js'

export interface ConnectorOptions {
  connectTimeoutMs: number
}

/** With the socket, its handshake done, or with why there is none. */
export type Connected = (err: Error | null, socket?: TLSSocket) => void

// The server's certificate from a handshake this recent stands for the server's certificate now:
// the expiry check takes it instead of making a handshake of its own.
const SEEN_FRESH_MS = 60_000

export class Connector {
  /** the name checked against the server certificate; an IP upstream is checked against its IP SANs */
  readonly serverName: string
  readonly #server: ServerEndpoint
  readonly #timeoutMs: number
  /**
   * One TLS context per set of credentials, shared by every connection made with it. Given the
   * PEM instead, Node.js parses the CA, certificate and key and builds a context for each
   * connection: CPU at every handshake, and memory held by every open watch.
   */
  readonly #contexts = new WeakMap<CredentialBundle, SecureContext>()
  /** the server's certificate from the latest handshake, pooled or probe */
  #seen: { certificate: X509Certificate; at: number } | undefined
  #handshakeWaiters: Array<() => void> = []

  /** `server`: fixed at start, the server the first credentials were for, and every later bundle is (binding.ts) */
  constructor (server: ServerEndpoint, options: ConnectorOptions) {
    this.#server = server
    this.#timeoutMs = options.connectTimeoutMs
    this.serverName = server.tlsServerName ?? unbracketed(server.url.hostname)
  }

  /** The TLS of every connection to the upstream: the credentials given, the same checks. */
  #tlsOptions (credentials: CredentialBundle): ConnectionOptions & { host: string; port: number } {
    const { url, tlsServerName, insecureSkipTlsVerify } = this.#server
    const host = unbracketed(url.hostname)
    return {
      host,
      port: Number(url.port || 443),
      secureContext: this.#context(credentials),
      // Verify unless the user said --insecure-skip-tls-verify: the server must present a certificate from --cacert for this name.
      rejectUnauthorized: !insecureSkipTlsVerify,
      // The name checked is --tls-server-name when set, else the host (SNI takes no IP; an IP is checked against IP SANs).
      ...(tlsServerName ? { servername: tlsServerName } : isIP(host) ? {} : { servername: host }),
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

  /**
   * How the pool of these credentials connects: undici's own connector (ours through a proxy),
   * noting the certificate each new connection's server presents.
   */
  poolOptions (credentials: CredentialBundle): Pick<Agent.Options, 'connect'> {
    const connectTls: buildConnector.connector = this.#server.proxy
      ? (_options, callback) => this.open(credentials, (err, socket) => (err ? callback(err, null) : callback(null, socket!)))
      : buildConnector({ ...this.#tlsOptions(credentials), timeout: this.#timeoutMs })
    const connect: buildConnector.connector = (options, callback) => connectTls(options, (...outcome) => {
      if (outcome[1]) {
        this.#saw((outcome[1] as TLSSocket).getPeerX509Certificate())
        for (const resolve of this.#handshakeWaiters.splice(0)) resolve()
      }
      callback(...outcome)
    })
    return { connect }
  }

  /**
   * A TLS connection of its own (an upgrade, the certificate probe): directly, or CONNECT through the
   * proxy and then the same TLS, the whole within the connect timeout. Calls back once, after the handshake.
   */
  open (credentials: CredentialBundle, callback: Connected): void {
    const tls = this.#tlsOptions(credentials)
    let tunnel: { destroy: () => void } | undefined
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
    const timer = setTimeout(() => finish(new UpstreamTimeout('connect')), this.#timeoutMs)
    const handshake = (raw?: Socket) => {
      socket = connect(raw ? { ...tls, socket: raw } : tls)
      socket.once('secureConnect', () => finish(null))
      socket.on('error', (e) => finish(e))
    }
    const proxy = this.#server.proxy
    if (!proxy) return handshake()
    try {
      tunnel = openTunnel(proxy, tls.host, tls.port, (err, raw) => {
        if (err || done) {
          raw?.destroy()
          finish(err)
          return
        }
        handshake(raw)
      })
    } catch (err) {
      finish(err as Error)
    }
  }

  #saw (certificate: X509Certificate | undefined): void {
    if (certificate) this.#seen = { certificate, at: Date.now() }
  }

  /** Resolves when the pool next completes a connection, its handshake done. */
  nextHandshake (): Promise<void> {
    return new Promise((resolve) => this.#handshakeWaiters.push(resolve))
  }

  /**
   * The server's certificate, for the expiry check: the one a connection of ours was shown within
   * the last minute, else from a handshake made for it.
   */
  async serverCertificate (credentials: CredentialBundle): Promise<X509Certificate> {
    if (this.#seen && Date.now() - this.#seen.at < SEEN_FRESH_MS) return this.#seen.certificate
    return this.#probeCertificate(credentials)
  }

  /** One TLS handshake, as the pool would make it, for the server's certificate. */
  #probeCertificate (credentials: CredentialBundle): Promise<X509Certificate> {
    return new Promise((resolve, reject) => {
      this.open(credentials, (err, socket) => {
        if (err) return reject(err)
        const cert = socket!.getPeerX509Certificate()
        this.#saw(cert)
        socket!.end()
        if (cert) resolve(cert)
        else reject(new Error('the upstream presented no certificate'))
      })
    })
  }
}
