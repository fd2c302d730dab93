// Reads ca.crt, client.crt and client.key into one immutable, fully validated bundle.
// Start-up uses it now; certificate reload will call the same function and swap bundles.
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { UsageError, } from './errors.js'
import { describeFsError } from './config.js'

export interface CredentialFiles {
  cacert: string
  cert: string
  key: string
}

export interface CredentialBundle {
  readonly files: CredentialFiles
  readonly caPem: string
  readonly certPem: string
  readonly keyPem: string
  readonly caCertificates: readonly X509Certificate[]
  /** the leaf: the first certificate of --cert */
  readonly clientCertificate: X509Certificate
  readonly notBefore: Date
  readonly notAfter: Date
  readonly loadedAt: Date
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g
const KEY_BLOCK = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/

async function readText(flag: string, file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    throw new UsageError(`${flag} ${file}: cannot read: ${describeFsError(err)}`)
  }
}

function parseCertificates(flag: string, file: string, text: string, what: string): X509Certificate[] {
  const blocks = text.match(CERT_BLOCK)
  if (!blocks) {
    const hint = KEY_BLOCK.test(text) ? ' (it holds a private key: are --cert and --key swapped?)' : ''
    throw new UsageError(`${flag} ${file}: no PEM certificate found; expected ${what} beginning with -----BEGIN CERTIFICATE-----${hint}`)
  }
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block)
    } catch (err) {
      throw new UsageError(`${flag} ${file}: certificate ${i + 1} cannot be parsed: ${(err as Error).message}`)
    }
  })
}

function parseKey(file: string, text: string): KeyObject {
  if (!KEY_BLOCK.test(text)) {
    const hint = text.includes('-----BEGIN CERTIFICATE-----') ? ' (it holds a certificate: are --cert and --key swapped?)' : ''
    throw new UsageError(`--key ${file}: no PEM private key found; expected -----BEGIN PRIVATE KEY----- or similar${hint}`)
  }
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(text)) {
    throw new UsageError(`--key ${file}: the private key is encrypted with a passphrase, which is not supported yet; decrypt it with 'openssl pkey -in ${file} -out client.key'`)
  }
  try {
    return createPrivateKey(text)
  } catch (err) {
    throw new UsageError(`--key ${file}: the private key cannot be parsed: ${(err as Error).message}`)
  }
}

function describeSubject(cert: X509Certificate): string {
  return cert.subject.replaceAll('\n', ', ')
}

/** Loads and validates the three files; any problem is a UsageError naming the file. */
export async function loadCredentials(files: CredentialFiles, now = new Date()): Promise<CredentialBundle> {
  const [caPem, certPem, keyPem] = await Promise.all([
    readText('--cacert', files.cacert),
    readText('--cert', files.cert),
    readText('--key', files.key),
  ])
  const caCertificates = parseCertificates('--cacert', files.cacert, caPem, 'the CA certificate(s)')
  const [clientCertificate] = parseCertificates('--cert', files.cert, certPem, 'the client certificate') as [X509Certificate]
  const key = parseKey(files.key, keyPem)
  if (!clientCertificate.checkPrivateKey(key)) {
    throw new UsageError(`--key ${files.key} does not match the certificate in --cert ${files.cert} (${describeSubject(clientCertificate)})`)
  }
  const notBefore = new Date(clientCertificate.validFrom)
  const notAfter = new Date(clientCertificate.validTo)
  if (now < notBefore) {
    throw new UsageError(`--cert ${files.cert}: the client certificate is not valid until ${notBefore.toISOString()} (check this machine's clock)`)
  }
  if (now > notAfter) {
    throw new UsageError(`--cert ${files.cert}: the client certificate expired on ${notAfter.toISOString()}; get a new one from your cluster's console`)
  }
  return Object.freeze({ files, caPem, certPem, keyPem, caCertificates, clientCertificate, notBefore, notAfter, loadedAt: now })
}

export function clientIdentity(bundle: CredentialBundle): string {
  return describeSubject(bundle.clientCertificate)
}
