// Reads the CA, client certificate and key into one immutable, fully validated bundle.
// Start-up and every reload call the same function; a bundle that fails is never used.
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto'
import { createSecureContext } from 'node:tls'
import { UsageError } from '../util/errors.js'
import { readRegularFile } from '../util/files.js'
import { describeFsError } from '../util/fs-errors.js'
import type { PemSource, ResolvedSources, ServerEndpoint, TokenSource } from './source.js'

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

// A CA bundle of every public root is about 220 KB; a certificate or key file past this is not one.
export const MAX_PEM_FILE_BYTES = 1024 * 1024
// A passphrase or a token: one line.
const MAX_SECRET_FILE_BYTES = 64 * 1024

const BEGIN_CERTIFICATE = '-----BEGIN CERTIFICATE-----'
const END_CERTIFICATE = '-----END CERTIFICATE-----'
const KEY_BLOCK = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/
const ENCRYPTED = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/

function where (source: PemSource): string {
  return source.kind === 'file' ? `${source.label} ${source.path}` : source.label
}

interface PemText {
  text: string
  /** permission bits, for files */
  mode?: number
}

async function readPem (source: PemSource): Promise<PemText> {
  if (source.kind === 'inline') return { text: source.pem }
  try {
    return await readRegularFile(source.path, MAX_PEM_FILE_BYTES)
  } catch (err) {
    throw new UsageError(`${where(source)}: cannot read: ${describeFsError(err)}`)
  }
}

/**
 * The certificate blocks of a PEM text, found in one pass: each search starts where the last block
 * ended. (A lazy regular expression retried the rest of the text from every BEGIN without an END:
 * quadratic, 16.8 s for 1.1 MB of BEGIN lines.)
 */
export function certificateBlocks (text: string): string[] {
  const blocks: string[] = []
  let from = 0
  for (;;) {
    const begin = text.indexOf(BEGIN_CERTIFICATE, from)
    if (begin < 0) break
    const end = text.indexOf(END_CERTIFICATE, begin + BEGIN_CERTIFICATE.length)
    // No END after this BEGIN means none after any later BEGIN either.
    if (end < 0) break
    from = end + END_CERTIFICATE.length
    blocks.push(text.slice(begin, from))
  }
  return blocks
}

function parseCertificates (source: PemSource, text: string, what: string): X509Certificate[] {
  const blocks = certificateBlocks(text)
  if (blocks.length === 0) {
    const hint = KEY_BLOCK.test(text) ? ' (it holds a private key: are --cert and --key swapped?)' : ''
    throw new UsageError(`${where(source)}: no PEM certificate found; expected ${what} beginning with -----BEGIN CERTIFICATE-----${hint}`)
  }
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block)
    } catch (err) {
      throw new UsageError(`${where(source)}: certificate ${i + 1} cannot be parsed: ${(err as Error).message}`)
    }
  })
}

async function parseKey (source: PemSource, text: string, passphraseFile: string | undefined): Promise<KeyObject> {
  if (!KEY_BLOCK.test(text)) {
    const hint = text.includes('-----BEGIN CERTIFICATE-----') ? ' (it holds a certificate: are --cert and --key swapped?)' : ''
    throw new UsageError(`${where(source)}: no PEM private key found; expected -----BEGIN PRIVATE KEY----- or similar${hint}`)
  }
  let passphrase: string | undefined
  if (ENCRYPTED.test(text)) {
    if (!passphraseFile) {
      throw new UsageError(`${where(source)}: the private key is encrypted; pass --key-passphrase-file FILE with its ` +
      'passphrase')
    }
    try {
      passphrase = (await readRegularFile(passphraseFile, MAX_SECRET_FILE_BYTES)).text.replace(/\r?\n$/, '')
    } catch (err) {
      throw new UsageError(`--key-passphrase-file ${passphraseFile}: cannot read: ${describeFsError(err)}`)
    }
  }
  try {
    return createPrivateKey(passphrase === undefined ? text : { key: text, passphrase })
  } catch (err) {
    const reason = passphrase !== undefined ? 'wrong passphrase in --key-passphrase-file, or a damaged key' : (err as Error).message
    throw new UsageError(`${where(source)}: the private key cannot be read: ${reason}`)
  }
}

function permissionWarning (source: PemSource, mode: number | undefined): string | undefined {
  if (source.kind !== 'file' || mode === undefined || (mode & 0o077) === 0) return undefined
  return `${where(source)} is readable by group or others (mode ${mode.toString(8).padStart(4, '0')}): anyone who reads it can act as ` +
    `you; run: chmod 600 ${source.path}`
}

/** A distinguished name on one line: `CN=jane, O=devs`. */
export function oneLine (name: string): string {
  return name.replaceAll('\n', ', ')
}

export function subjectOf (cert: X509Certificate): string {
  return oneLine(cert.subject)
}

interface KeyPair {
  certPem: string
  /** the leaf: the first certificate of the file */
  certificate: X509Certificate
  privateKey: KeyObject
  /** permission bits of the key file */
  keyMode: number | undefined
}

/** A certificate and the private key that belongs to it, both read and checked against each other. */
async function loadKeyPair (
  certSource: PemSource, keySource: PemSource, what: string, passphraseFile: string | undefined
): Promise<KeyPair> {
  const [cert, key] = await Promise.all([readPem(certSource), readPem(keySource)])
  const [certificate] = parseCertificates(certSource, cert.text, what) as [X509Certificate]
  const privateKey = await parseKey(keySource, key.text, passphraseFile)
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new UsageError(`${where(keySource)} does not match the certificate in ${where(certSource)} (${subjectOf(certificate)})`)
  }
  return { certPem: cert.text, certificate, privateKey, keyMode: key.mode }
}

// A token is one header value: visible ASCII, no spaces (anything else could split the header).
const TOKEN_CHARS = /^[\x21-\x7e]+$/

async function readBearerToken (source: TokenSource): Promise<string> {
  let token: string
  if (source.kind === 'inline') token = source.token.trim()
  else {
    try {
      token = (await readRegularFile(source.path, MAX_SECRET_FILE_BYTES)).text.trim()
    } catch (err) {
      throw new UsageError(`${source.label} ${source.path}: cannot read: ${describeFsError(err)}`)
    }
  }
  const named = source.kind === 'file' ? `${source.label} ${source.path}` : source.label
  // The message never quotes the token.
  if (token === '') throw new UsageError(`${named} is empty`)
  if (!TOKEN_CHARS.test(token)) throw new UsageError(`${named} is not one token: it holds spaces or characters a header cannot carry`)
  return token
}

/** Loads and validates everything; any problem is a UsageError naming the source. */
export async function loadBundle (sources: ResolvedSources, now: Date): Promise<CredentialBundle> {
  const [ca, client, listener, bearerToken] = await Promise.all([
    sources.ca ? readPem(sources.ca) : undefined,
    sources.cert && sources.key ? loadKeyPair(sources.cert, sources.key, 'the client certificate', sources.passphraseFile) : undefined,
    sources.listener && loadKeyPair(sources.listener.cert, sources.listener.key, 'the certificate to serve HTTPS with', undefined),
    sources.token ? readBearerToken(sources.token) : undefined,
  ])
  const caPem = ca?.text
  const caCertificates = sources.ca && caPem !== undefined ? parseCertificates(sources.ca, caPem, 'the CA certificate(s)') : []
  const clientCertificate = client?.certificate
  let expiresAt = sources.expiresAt
  let expiring = 'the exec plugin\'s credential'
  if (clientCertificate) {
    const notBefore = new Date(clientCertificate.validFrom)
    const notAfter = new Date(clientCertificate.validTo)
    if (now < notBefore) {
      throw new UsageError(`${where(sources.cert!)}: the client certificate is not valid until ${notBefore.toISOString()} (check this ` +
        'machine\'s clock)')
    }
    if (now > notAfter) {
      throw new UsageError(`${where(sources.cert!)}: the client certificate expired on ${notAfter.toISOString()}; get a new one ` +
        'from your cluster\'s console')
    }
    if (expiresAt === undefined || notAfter < expiresAt) {
      expiresAt = notAfter
      expiring = 'the client certificate'
    }
  }
  const warnings: string[] = []
  const keyWarnings = [
    client && permissionWarning(sources.key!, client.keyMode),
    listener && permissionWarning(sources.listener!.key, listener.keyMode),
  ]
  for (const warning of keyWarnings) {
    if (warning) warnings.push(warning)
  }
  // A cluster may sign client certificates with a CA other than the server's, so this only warns.
  const signedByCa = clientCertificate &&
    caCertificates.some((ca) => clientCertificate.checkIssued(ca) && clientCertificate.verify(ca.publicKey))
  if (clientCertificate && caCertificates.length > 0 && !signedByCa) {
    warnings.push(`the client certificate (issuer ${oneLine(clientCertificate.issuer)}) is not signed by a CA in ${where(sources.ca!)}; ` +
      'fine if the cluster signs client certificates with a separate CA')
  }
  const tokenFrom = sources.token && (sources.token.kind === 'file' ? `${sources.token.label} ${sources.token.path}` : sources.token.label)
  return Object.freeze({
    sources,
    server: sources.server,
    caPem,
    certPem: client?.certPem,
    keyPem: client?.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    caCertificates,
    clientCertificate,
    bearerToken,
    identity: clientCertificate
      ? subjectOf(clientCertificate) + (tokenFrom ? ` with ${tokenFrom}` : '')
      : tokenFrom ?? 'nobody',
    expiresAt,
    expiring,
    refreshAt: sources.refreshAt,
    loadedAt: now,
    warnings,
    listener: listener && servable(sources.listener!.cert, {
      certPem: listener.certPem,
      keyPem: listener.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      certificate: listener.certificate,
    }),
  })
}

/** A pair OpenSSL will serve with (it refuses, say, a 512-bit RSA key that matches its certificate well enough). */
function servable (source: PemSource, pair: ListenerKeyPair): ListenerKeyPair {
  try {
    createSecureContext({ cert: pair.certPem, key: pair.keyPem })
  } catch (err) {
    throw new UsageError(`${where(source)}: cannot serve HTTPS with this certificate and key: ${(err as Error).message}`)
  }
  return pair
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
