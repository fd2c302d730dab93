// A certificate for the listener of one run (`-- COMMAND`): an ECDSA P-256 key from node:crypto and
// a self-signed X.509 v3 certificate for 127.0.0.1, ::1 and localhost, which the command is given
// as its CA. Node.js can make keys and signatures but not certificates, and the certificate has one
// fixed shape, so its DER is written here (RFC 5280) rather than pulling an ASN.1 library (a dozen
// packages) into every install. Made in about a millisecond; held in memory only.
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto'

/** A DER element: tag, definite length, contents. */
function der (tag: number, ...contents: Buffer[]): Buffer {
  const body = Buffer.concat(contents)
  const n = body.length
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff]
  return Buffer.concat([Buffer.from([tag, ...length]), body])
}

const sequence = (...items: Buffer[]) => der(0x30, ...items)
const set = (...items: Buffer[]) => der(0x31, ...items)
const octets = (bytes: Buffer) => der(0x04, bytes)
const bits = (bytes: Buffer) => der(0x03, Buffer.from([0]), bytes)
const explicit = (n: number, item: Buffer) => der(0xa0 + n, item)

function oid (dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]]
  const bytes = [40 * a + b]
  for (const arc of rest) {
    const base128 = [arc & 0x7f]
    for (let v = arc >> 7; v > 0; v >>= 7) base128.unshift((v & 0x7f) | 0x80)
    bytes.push(...base128)
  }
  return der(0x06, Buffer.from(bytes))
}

/** UTCTime (YYMMDDHHMMSSZ): RFC 5280 wants it for dates before 2050, GeneralizedTime after. */
function time (date: Date): Buffer {
  // 2026-12-07T18:33:10.123Z → 20261207183310Z
  const digits = `${date.toISOString().slice(0, 19).replace(/[-T:]/g, '')}Z`
  return date.getUTCFullYear() < 2050 ? der(0x17, Buffer.from(digits.slice(2))) : der(0x18, Buffer.from(digits))
}

const ECDSA_WITH_SHA256 = sequence(oid('1.2.840.10045.4.3.2'))

export interface SelfSigned {
  certPem: string
  keyPem: string
}

/**
 * A certificate valid from a minute ago for `days`, for the loopback names, and its key. It is its
 * own CA (basicConstraints CA, keyCertSign), as `openssl req -x509` makes one: Go, OpenSSL and
 * Node.js all take it as a trust anchor for itself.
 */
export function selfSignedLoopback (commonName: string, days: number, now = new Date()): SelfSigned {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const serial = randomBytes(16)
  // Positive, and no leading zero byte: a DER INTEGER of 16 bytes.
  serial[0] = (serial[0]! & 0x7f) | 0x40
  const name = sequence(set(sequence(oid('2.5.4.3'), der(0x0c, Buffer.from(commonName)))))
  const altNames = sequence(
    der(0x82, Buffer.from('localhost')),
    der(0x87, Buffer.from([127, 0, 0, 1])),
    der(0x87, Buffer.from([...Array(15).fill(0), 1] as number[]))
  )
  const extensions = sequence(
    // basicConstraints, critical: CA
    sequence(oid('2.5.29.19'), der(0x01, Buffer.from([0xff])), octets(sequence(der(0x01, Buffer.from([0xff]))))),
    // keyUsage, critical: digitalSignature and keyCertSign
    sequence(oid('2.5.29.15'), der(0x01, Buffer.from([0xff])), octets(der(0x03, Buffer.from([0x02, 0x84])))),
    // subjectAltName
    sequence(oid('2.5.29.17'), octets(altNames))
  )
  const tbs = sequence(
    explicit(0, der(0x02, Buffer.from([2]))),
    der(0x02, serial),
    ECDSA_WITH_SHA256,
    name,
    sequence(time(new Date(now.getTime() - 60_000)), time(new Date(now.getTime() + days * 86_400_000))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    explicit(3, extensions)
  )
  const certificate = sequence(tbs, ECDSA_WITH_SHA256, bits(sign('sha256', tbs, privateKey)))
  const lines = certificate.toString('base64').match(/.{1,64}/g)!.join('\n')
  return {
    certPem: `-----BEGIN CERTIFICATE-----\n${lines}\n-----END CERTIFICATE-----\n`,
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  }
}
