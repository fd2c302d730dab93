// The credential files read and checked one by one: PEM certificates and private keys, a certificate
// with the key that belongs to it, bearer tokens. Any problem is a UsageError naming the source.
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto'
import { createSecureContext } from 'node:tls'
import { UsageError } from '../util/errors.js'
import { describeFsError, readRegularFile } from '../util/files.js'
import type { PemSource, TokenSource } from './source.js'

// A CA bundle of every public root is about 220 KB; a certificate or key file past this is not one.
export const MAX_PEM_FILE_BYTES = 1024 * 1024
// A passphrase or a token: one line.
const MAX_SECRET_FILE_BYTES = 64 * 1024

const BEGIN_CERTIFICATE = '-----BEGIN CERTIFICATE-----'
const END_CERTIFICATE = '-----END CERTIFICATE-----'
const KEY_BLOCK = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/
const ENCRYPTED = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/

/** A source as messages name it: the setting, and the file when it is one. */
export function sourceName (source: PemSource | TokenSource): string {
  return source.kind === 'file' ? `${source.label} ${source.path}` : source.label
}

export interface PemText {
  text: string
  /** permission bits and owner, for files */
  file?: FileAccess
}

/** Who may read a file besides us: its permission bits and its owner. */
export interface FileAccess {
  mode: number
  uid: number
}

export async function readPem (source: PemSource): Promise<PemText> {
  if (source.kind === 'inline') return { text: source.pem }
  try {
    const { text, mode, uid } = await readRegularFile(source.path, MAX_PEM_FILE_BYTES)
    return { text, file: { mode, uid } }
  } catch (err) {
    throw new UsageError(`${sourceName(source)}: cannot read: ${describeFsError(err)}`)
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

export function parseCertificates (source: PemSource, text: string, what: string): X509Certificate[] {
  const blocks = certificateBlocks(text)
  if (blocks.length === 0) {
    const hint = KEY_BLOCK.test(text) ? ' (it holds a private key: are --cert and --key swapped?)' : ''
    throw new UsageError(`${sourceName(source)}: no PEM certificate found; expected ${what} beginning with -----BEGIN CERTIFICATE-----${hint}`)
  }
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block)
    } catch (err) {
      throw new UsageError(`${sourceName(source)}: certificate ${i + 1} cannot be parsed: ${(err as Error).message}`)
    }
  })
}

async function parseKey (source: PemSource, text: string, passphraseFile: string | undefined): Promise<KeyObject> {
  if (!KEY_BLOCK.test(text)) {
    const hint = text.includes('-----BEGIN CERTIFICATE-----') ? ' (it holds a certificate: are --cert and --key swapped?)' : ''
    throw new UsageError(`${sourceName(source)}: no PEM private key found; expected -----BEGIN PRIVATE KEY----- or similar${hint}`)
  }
  let passphrase: string | undefined
  if (ENCRYPTED.test(text)) {
    if (!passphraseFile) {
      throw new UsageError(`${sourceName(source)}: the private key is encrypted; pass --key-passphrase-file FILE with its passphrase`)
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
    throw new UsageError(`${sourceName(source)}: the private key cannot be read: ${reason}`)
  }
}

const OTHERS_READ = 0o004
const OWNER_READ = 0o400

/**
 * Who else can read a key file: every user when its mode lets others read it, or its owner when that
 * is another user (root aside, who reads everything anyway). Group read is not judged: a Secret volume
 * mounted with an fsGroup makes every file 0440 for the pod's own group, which cannot be changed there.
 * `self` is this process's uid; undefined where there are none (Windows).
 */
export function otherReaders (file: FileAccess, self: number | undefined): string | undefined {
  const mode = file.mode.toString(8).padStart(4, '0')
  if ((file.mode & OTHERS_READ) !== 0) return `is readable by every user of this machine (mode ${mode})`
  if (self !== undefined && file.uid !== self && file.uid !== 0 && (file.mode & OWNER_READ) !== 0) {
    return `belongs to uid ${file.uid}, who can read it (mode ${mode}; this process runs as uid ${self})`
  }
  return undefined
}

export function permissionWarning (source: PemSource, file: FileAccess | undefined, self = process.getuid?.()): string | undefined {
  if (source.kind !== 'file' || file === undefined) return undefined
  const readers = otherReaders(file, self)
  if (readers === undefined) return undefined
  const fix = (file.mode & OTHERS_READ) !== 0
    ? `run: chmod 600 ${source.path} (in a Kubernetes Secret volume: defaultMode: 0400)`
    : 'keep the key in a file of your own, mode 0600'
  return `${sourceName(source)} ${readers}: anyone who reads it can act as you; ${fix}`
}

/** A distinguished name on one line: `CN=jane, O=devs`. */
export function oneLine (name: string): string {
  return name.replaceAll('\n', ', ')
}

export function subjectOf (cert: X509Certificate): string {
  return oneLine(cert.subject)
}

export interface KeyPair {
  certPem: string
  /** the leaf: the first certificate of the file */
  certificate: X509Certificate
  privateKey: KeyObject
  /** who may read the key file */
  keyFile: FileAccess | undefined
}

/** A certificate and the private key that belongs to it, both read and checked against each other. */
export async function loadKeyPair (
  certSource: PemSource, keySource: PemSource, what: string, passphraseFile: string | undefined
): Promise<KeyPair> {
  const [cert, key] = await Promise.all([readPem(certSource), readPem(keySource)])
  const [certificate] = parseCertificates(certSource, cert.text, what) as [X509Certificate]
  const privateKey = await parseKey(keySource, key.text, passphraseFile)
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new UsageError(`${sourceName(keySource)} does not match the certificate in ${sourceName(certSource)} (${subjectOf(certificate)})`)
  }
  return { certPem: cert.text, certificate, privateKey, keyFile: key.file }
}

/** A pair OpenSSL will serve with (it refuses, say, a 512-bit RSA key that matches its certificate well enough). */
export function checkServable (source: PemSource, certPem: string, keyPem: string): void {
  try {
    createSecureContext({ cert: certPem, key: keyPem })
  } catch (err) {
    throw new UsageError(`${sourceName(source)}: cannot serve HTTPS with this certificate and key: ${(err as Error).message}`)
  }
}

// A token is one header value: visible ASCII, no spaces (anything else could split the header).
const TOKEN_CHARS = /^[\x21-\x7e]+$/

export async function readBearerToken (source: TokenSource): Promise<string> {
  let token: string
  if (source.kind === 'inline') token = source.token.trim()
  else {
    try {
      token = (await readRegularFile(source.path, MAX_SECRET_FILE_BYTES)).text.trim()
    } catch (err) {
      throw new UsageError(`${source.label} ${source.path}: cannot read: ${describeFsError(err)}`)
    }
  }
  const named = sourceName(source)
  // The message never quotes the token.
  if (token === '') throw new UsageError(`${named} is empty`)
  if (!TOKEN_CHARS.test(token)) throw new UsageError(`${named} is not one token: it holds spaces or characters a header cannot carry`)
  return token
}
