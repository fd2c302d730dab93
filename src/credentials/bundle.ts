// The credentials of one load as one immutable, fully validated bundle, assembled from what pem.ts
// read and checked. Start-up and every reload call the same function; a bundle that fails is never used.
import type { KeyObject, X509Certificate } from 'node:crypto'
import { UsageError } from '../util/errors.js'
import {
  checkServable, loadKeyPair, oneLine, parseCertificates, permissionWarning, readBearerToken, readPem, sourceName, subjectOf, type KeyPair,
} from './pem.js'
import type { PemSource, ResolvedSources, ServerEndpoint, TokenSource } from './source.js'
import { serviceAccountOf } from './in-cluster.js'

export interface CredentialBundle {
  readonly sources: ResolvedSources
  /** the API server these credentials are for */
  readonly server: ServerEndpoint
  /** undefined only with --insecure-skip-tls-verify and no CA anywhere */
  readonly caPem: string | undefined
  /** undefined: no client certificate, a bearer token alone */
  readonly certPem: string | undefined
  /** unencrypted PKCS#8, whatever format and encryption the file had */
  readonly keyPem: string | undefined
  readonly caCertificates: readonly X509Certificate[]
  /** the leaf: the first certificate of the client certificate file */
  readonly clientCertificate: X509Certificate | undefined
  /** sent upstream as `Authorization: Bearer`; never logged, never shown */
  readonly bearerToken: string | undefined
  /** who the API server sees, for logs: the certificate's subject, or where the token came from */
  readonly identity: string
  /** when these credentials stop working: the client certificate's end, or an exec plugin's expirationTimestamp */
  readonly expiresAt: Date | undefined
  /** what expires then, for messages */
  readonly expiring: string
  /** when the exec plugin is run again; undefined: no plugin, or nothing to renew */
  readonly refreshAt: Date | undefined
  readonly loadedAt: Date
  /** things worth a warning that do not stop the proxy */
  readonly warnings: readonly string[]
  /** the certificate and key the listener serves HTTPS with (--listen-cert, --listen-key) */
  readonly listener: ListenerKeyPair | undefined
}

export interface ListenerKeyPair {
  readonly certPem: string
  readonly keyPem: string
  /** the leaf it serves, watched for expiry like the others */
  readonly certificate: X509Certificate
}

/** Loads and validates everything; any problem is a UsageError naming the source. */
export async function loadBundle (sources: ResolvedSources, now: Date): Promise<CredentialBundle> {
  const read = await readAll(sources)
  const caCertificates = sources.ca && read.caPem !== undefined ? parseCertificates(sources.ca, read.caPem, 'the CA certificate(s)') : []
  const clientCertificate = read.client?.certificate
  if (clientCertificate) checkValidNow(sources.cert!, clientCertificate, now)
  const warnings = warningsOf(sources, read, caCertificates)
  return Object.freeze({
    sources,
    server: sources.server,
    caPem: read.caPem,
    certPem: read.client?.certPem,
    keyPem: read.client && pkcs8(read.client.privateKey),
    caCertificates,
    clientCertificate,
    bearerToken: read.bearerToken,
    identity: identityOf(clientCertificate, sources.token, read.bearerToken),
    ...expiryOf(sources.expiresAt, clientCertificate),
    refreshAt: sources.refreshAt,
    loadedAt: now,
    warnings,
    listener: read.listener && listenerPair(sources.listener!.cert, read.listener),
  })
}

/** Every source of a bundle, read and checked at once. */
interface Read {
  caPem: string | undefined
  client: KeyPair | undefined
  listener: KeyPair | undefined
  bearerToken: string | undefined
}

async function readAll (sources: ResolvedSources): Promise<Read> {
  const [ca, client, listener, bearerToken] = await Promise.all([
    sources.ca ? readPem(sources.ca) : undefined,
    sources.cert && sources.key ? loadKeyPair(sources.cert, sources.key, 'the client certificate', sources.passphraseFile) : undefined,
    sources.listener && loadKeyPair(sources.listener.cert, sources.listener.key, 'the certificate to serve HTTPS with', undefined),
    sources.token ? readBearerToken(sources.token) : undefined,
  ])
  return { caPem: ca?.text, client, listener, bearerToken }
}

/** A client certificate outside its validity would be refused by every server: refused here first. */
function checkValidNow (source: PemSource, certificate: X509Certificate, now: Date): void {
  const notBefore = new Date(certificate.validFrom)
  const notAfter = new Date(certificate.validTo)
  if (now < notBefore) {
    throw new UsageError(`${sourceName(source)}: the client certificate is not valid until ${notBefore.toISOString()} (check this machine's clock)`)
  }
  if (now > notAfter) {
    throw new UsageError(`${sourceName(source)}: the client certificate expired on ${notAfter.toISOString()}; get a new one from your cluster's console`)
  }
}

/** What ends first: the client certificate, or the exec plugin's credential. */
function expiryOf (
  pluginExpiresAt: Date | undefined, clientCertificate: X509Certificate | undefined
): Pick<CredentialBundle, 'expiresAt' | 'expiring'> {
  const notAfter = clientCertificate && new Date(clientCertificate.validTo)
  if (notAfter && (pluginExpiresAt === undefined || notAfter < pluginExpiresAt)) {
    return { expiresAt: notAfter, expiring: 'the client certificate' }
  }
  return { expiresAt: pluginExpiresAt, expiring: 'the exec plugin\'s credential' }
}

/** Who the API server sees, for logs: the certificate's subject, or where the token came from (and its account). */
function identityOf (
  clientCertificate: X509Certificate | undefined, token: TokenSource | undefined, bearerToken: string | undefined
): string {
  const account = bearerToken === undefined ? undefined : serviceAccountOf(bearerToken)
  const tokenFrom = token && (account ? `${account} (${sourceName(token)})` : sourceName(token))
  return clientCertificate ? subjectOf(clientCertificate) + (tokenFrom ? ` with ${tokenFrom}` : '') : tokenFrom ?? 'nobody'
}

function warningsOf (sources: ResolvedSources, read: Read, caCertificates: readonly X509Certificate[]): string[] {
  const warnings: string[] = []
  const keyWarnings = [
    read.client && permissionWarning(sources.key!, read.client.keyFile),
    read.listener && permissionWarning(sources.listener!.key, read.listener.keyFile),
  ]
  for (const warning of keyWarnings) {
    if (warning) warnings.push(warning)
  }
  // A cluster may sign client certificates with a CA other than the server's, so this only warns.
  const clientCertificate = read.client?.certificate
  const signedByCa = clientCertificate &&
    caCertificates.some((ca) => clientCertificate.checkIssued(ca) && clientCertificate.verify(ca.publicKey))
  if (clientCertificate && caCertificates.length > 0 && !signedByCa) {
    warnings.push(`the client certificate (issuer ${oneLine(clientCertificate.issuer)}) is not signed by a CA in ${sourceName(sources.ca!)}; fine if the cluster signs client certificates with a separate CA`)
  }
  return warnings
}

/** The key as the bundle keeps it: unencrypted PKCS#8, whatever format and encryption the file had. */
function pkcs8 (key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString()
}

function listenerPair (certSource: PemSource, pair: KeyPair): ListenerKeyPair {
  const keyPem = pkcs8(pair.privateKey)
  checkServable(certSource, pair.certPem, keyPem)
  return { certPem: pair.certPem, keyPem, certificate: pair.certificate }
}

/** The same identity toward the API server: client certificate, key and CA (the listener's pair aside). */
export function sameClient (a: CredentialBundle, b: CredentialBundle): boolean {
  return a.certPem === b.certPem && a.keyPem === b.keyPem && a.caPem === b.caPem
}

/** The same server, named and checked the same way. */
export function sameServer (a: CredentialBundle, b: CredentialBundle): boolean {
  return a.server.url.href === b.server.url.href && a.server.tlsServerName === b.server.tlsServerName &&
    a.server.insecureSkipTlsVerify === b.server.insecureSkipTlsVerify && a.server.proxy?.href === b.server.proxy?.href &&
    a.server.disableCompression === b.server.disableCompression
}

/** Nothing a reader would notice changed: the server, the client's identity and token, the listener's pair. */
export function sameBundle (a: CredentialBundle, b: CredentialBundle): boolean {
  return sameServer(a, b) && sameClient(a, b) && a.bearerToken === b.bearerToken && sameListener(a.listener, b.listener) &&
    a.expiresAt?.getTime() === b.expiresAt?.getTime()
}

/** The same pair for the listener to serve HTTPS with (both absent counts as the same). */
export function sameListener (a: ListenerKeyPair | undefined, b: ListenerKeyPair | undefined): boolean {
  return a?.certPem === b?.certPem && a?.keyPem === b?.keyPem
}

export function clientIdentity (bundle: CredentialBundle): string {
  return bundle.identity
}
