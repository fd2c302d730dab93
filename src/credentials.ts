// Reads the CA, client certificate and key into one immutable, fully validated bundle.
// Start-up and every reload call the same function; a bundle that fails is never used.
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import type { CredentialSources } from './config.js'
import { UsageError } from './errors.js'
import { describeFsError } from './fs-errors.js'
import type { PemSource } from './kubeconfig.js'

export interface CredentialBundle {
  readonly sources: CredentialSources
  /** undefined only with --insecure-skip-tls-verify and no CA anywhere */
  readonly caPem: string | undefined
  readonly certPem: string
  /** unencrypted PKCS#8, whatever format and encryption the file had */
  readonly keyPem: string
  readonly caCertificates: readonly X509Certificate[]
  /** the leaf: the first certificate of the client certificate file */
  readonly clientCertificate: X509Certificate
  readonly notBefore: Date
  readonly notAfter: Date
  readonly loadedAt: Date
  /** things worth a warning that do not stop the proxy */
  readonly warnings: readonly string[]
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g
const KEY_BLOCK = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/
const ENCRYPTED = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/

function where(source: PemSource): string {
  return source.kind === 'file' ? `${source.label} ${source.path}` : source.label
}

async function readPem(source: PemSource): Promise<string> {
  if (source.kind === 'inline') return source.pem
  try {
    return await readFile(source.path, 'utf8')
  } catch (err) {
    throw new UsageError(`${where(source)}: cannot read: ${describeFsError(err)}`)
  }
}

function parseCertificates(source: PemSource, text: string, what: string): X509Certificate[] {
  const blocks = text.match(CERT_BLOCK)
  if (!blocks) {
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

async function parseKey(source: PemSource, text: string, passphraseFile: string | undefined): Promise<KeyObject> {
  if (!KEY_BLOCK.test(text)) {
    const hint = text.includes('-----BEGIN CERTIFICATE-----') ? ' (it holds a certificate: are --cert and --key swapped?)' : ''
    throw new UsageError(`${where(source)}: no PEM private key found; expected -----BEGIN PRIVATE KEY----- or similar${hint}`)
  }
  let passphrase: string | undefined
  if (ENCRYPTED.test(text)) {
    if (!passphraseFile) throw new UsageError(`${where(source)}: the private key is encrypted; pass --key-passphrase-file FILE with its passphrase`)
    try {
      passphrase = (await readFile(passphraseFile, 'utf8')).replace(/\r?\n$/, '')
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

async function permissionWarning(source: PemSource): Promise<string | undefined> {
  if (source.kind !== 'file') return undefined
  const mode = (await stat(source.path)).mode & 0o777
  if ((mode & 0o077) === 0) return undefined
  return `${where(source)} is readable by group or others (mode ${mode.toString(8).padStart(4, '0')}): anyone who reads it can act as you; run: chmod 600 ${source.path}`
}

export function subjectOf(cert: X509Certificate): string {
  return cert.subject.replaceAll('\n', ', ')
}

/** Loads and validates everything; any problem is a UsageError naming the source. */
export async function loadCredentials(sources: CredentialSources, now = new Date()): Promise<CredentialBundle> {
  const [caPem, certPem, keyText] = await Promise.all([
    sources.ca ? readPem(sources.ca) : undefined,
    readPem(sources.cert),
    readPem(sources.key),
  ])
  const caCertificates = sources.ca && caPem !== undefined ? parseCertificates(sources.ca, caPem, 'the CA certificate(s)') : []
  const [clientCertificate] = parseCertificates(sources.cert, certPem, 'the client certificate') as [X509Certificate]
  const key = await parseKey(sources.key, keyText, sources.passphraseFile)
  if (!clientCertificate.checkPrivateKey(key)) {
    throw new UsageError(`${where(sources.key)} does not match the certificate in ${where(sources.cert)} (${subjectOf(clientCertificate)})`)
  }
  const notBefore = new Date(clientCertificate.validFrom)
  const notAfter = new Date(clientCertificate.validTo)
  if (now < notBefore) {
    throw new UsageError(`${where(sources.cert)}: the client certificate is not valid until ${notBefore.toISOString()} (check this machine's clock)`)
  }
  if (now > notAfter) {
    throw new UsageError(`${where(sources.cert)}: the client certificate expired on ${notAfter.toISOString()}; get a new one from your cluster's console`)
  }
  const warnings: string[] = []
  const keyWarning = await permissionWarning(sources.key)
  if (keyWarning) warnings.push(keyWarning)
  // A cluster may sign client certificates with a CA other than the server's, so this only warns.
  if (caCertificates.length > 0 && !caCertificates.some((ca) => clientCertificate.checkIssued(ca) && clientCertificate.verify(ca.publicKey))) {
    warnings.push(`the client certificate (issuer ${clientCertificate.issuer.replaceAll('\n', ', ')}) is not signed by a CA in ${where(sources.ca!)}; fine if the cluster signs client certificates with a separate CA`)
  }
  return Object.freeze({
    sources,
    caPem,
    certPem,
    keyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    caCertificates,
    clientCertificate,
    notBefore,
    notAfter,
    loadedAt: now,
    warnings,
  })
}

export function clientIdentity(bundle: CredentialBundle): string {
  return subjectOf(bundle.clientCertificate)
}
