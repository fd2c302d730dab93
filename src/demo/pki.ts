// A throwaway PKI for the demo upstream and the tests: a CA, and server and client
// certificates signed by it, generated in memory with WebCrypto (no openssl needed).
import { webcrypto } from 'node:crypto'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import 'reflect-metadata'
import * as x509 from '@peculiar/x509'

x509.cryptoProvider.set(webcrypto as unknown as Crypto)

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const
const DAY = 24 * 60 * 60 * 1000

export interface KeyPairPem {
  certPem: string
  keyPem: string
}

export interface CertificateAuthority extends KeyPairPem {
  name: string
  issue(opts: LeafOptions): Promise<KeyPairPem>
}

export interface LeafOptions {
  commonName: string
  organization?: string
  /** serverAuth leaves get SANs; clientAuth leaves are client certificates */
  usage: 'server' | 'client'
  dnsNames?: string[]
  ipAddresses?: string[]
  notBefore?: Date
  notAfter?: Date
  /** certify this key instead of a fresh P-256 one (keyPem is then empty: the caller holds the key) */
  publicKey?: CryptoKey
}

let serial = Date.now()
function nextSerial (): string {
  serial += 1
  return serial.toString(16).padStart(16, '0')
}

async function keyPem (key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key)
  return x509.PemConverter.encode(der, 'PRIVATE KEY')
}

function generateKeys (): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])
}

export async function createCA (name = 'mtls-proxy demo CA'): Promise<CertificateAuthority> {
  const keys = await generateKeys()
  const now = Date.now()
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: nextSerial(),
    name: `CN=${name}`,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + 365 * DAY),
    keys,
    signingAlgorithm: EC,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  })

  async function issue (opts: LeafOptions): Promise<KeyPairPem> {
    const leafKeys = opts.publicKey ? undefined : await generateKeys()
    const subject = `CN=${opts.commonName}${opts.organization ? `, O=${opts.organization}` : ''}`
    const extensions: x509.Extension[] = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([opts.usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth]),
      await x509.AuthorityKeyIdentifierExtension.create(ca),
    ]
    if (opts.usage === 'server') {
      extensions.push(new x509.SubjectAlternativeNameExtension([
        ...(opts.dnsNames ?? ['localhost']).map((value) => ({ type: 'dns' as const, value })),
        ...(opts.ipAddresses ?? ['127.0.0.1', '::1']).map((value) => ({ type: 'ip' as const, value })),
      ]))
    }
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: nextSerial(),
      subject,
      issuer: ca.subject,
      notBefore: opts.notBefore ?? new Date(Date.now() - DAY),
      notAfter: opts.notAfter ?? new Date(Date.now() + 90 * DAY),
      signingAlgorithm: EC,
      publicKey: opts.publicKey ?? leafKeys!.publicKey,
      signingKey: keys.privateKey,
      extensions,
    })
    return { certPem: cert.toString('pem'), keyPem: leafKeys ? await keyPem(leafKeys.privateKey) : '' }
  }

  return { name, certPem: ca.toString('pem'), keyPem: await keyPem(keys.privateKey), issue }
}

export interface DemoPki {
  ca: CertificateAuthority
  server: KeyPairPem
  client: KeyPairPem
}

/** A CA, a server certificate for localhost/127.0.0.1/::1 and a cluster-admin-like client certificate. */
export async function createDemoPki (): Promise<DemoPki> {
  const ca = await createCA()
  const server = await ca.issue({ commonName: 'kube-apiserver', usage: 'server' })
  const client = await ca.issue({ commonName: 'demo-admin', organization: 'system:masters', usage: 'client' })
  return { ca, server, client }
}

export interface ClientFiles {
  dir: string
  cacert: string
  cert: string
  key: string
}

/** Writes ca.crt, client.crt and client.key as a Kubernetes console hands them out. */
export async function writeClientFiles (pki: DemoPki, dir?: string): Promise<ClientFiles> {
  const folder = dir ?? await mkdtemp(join(tmpdir(), 'mtls-proxy-'))
  const files = { dir: folder, cacert: join(folder, 'ca.crt'), cert: join(folder, 'client.crt'), key: join(folder, 'client.key') }
  await writeFile(files.cacert, pki.ca.certPem)
  await writeFile(files.cert, pki.client.certPem)
  await writeFile(files.key, pki.client.keyPem, { mode: 0o600 })
  return files
}
