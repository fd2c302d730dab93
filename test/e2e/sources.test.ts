// Where certificates come from: kubeconfig (paths and -data, contexts), environment variables,
// every key format, encrypted keys; and the warnings about key permissions and chains.
import { generateKeyPairSync, webcrypto, type KeyObject } from 'node:crypto'
import { chmod, chown, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { until } from '../helpers/until.js'
import { stringify } from 'yaml'
import { createCA, pkiWithFiles } from '../helpers/pki.js'
import { settingsIn } from '../helpers/settings.js'
import { startUpstream, whoAmIHandler } from '../helpers/upstream.js'
import { capturedLogger, startProxy } from '../helpers/proxy.js'
import { get } from '../helpers/http.js'
import { loadConfig } from '../../src/settings/load.js'
import { sourceOf } from '../../src/credentials/source.js'
import { openCredentialStore } from '../../src/credentials/store.js'

const { pki, files } = await pkiWithFiles(t)
const dir = files.dir
const b64 = (s: string) => Buffer.from(s).toString('base64')

const { config, load } = settingsIn(dir)

const whoamiUpstream = (tt: Parameters<typeof startUpstream>[0]) => startUpstream(tt, pki, whoAmIHandler)

async function kubeconfig (name: string, doc: Record<string, unknown>): Promise<string> {
  const file = join(dir, name)
  await writeFile(file, stringify(doc))
  return file
}

function kubeDoc (server: string, user: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'cce',
    clusters: [{ name: 'cce-cluster', cluster: { server, 'certificate-authority': 'ca.crt', ...extra } }, { name: 'other', cluster: { server: 'https://10.9.9.9:6443', 'certificate-authority-data': b64(pki.ca.certPem) } }],
    users: [{ name: 'admin', user }, { name: 'token-user', user: { token: 'abc' } }, { name: 'exec-user', user: { exec: { command: 'aws' } } }],
    contexts: [{ name: 'cce', context: { cluster: 'cce-cluster', user: 'admin' } }, { name: 'other', context: { cluster: 'other', user: 'admin' } },
      { name: 'token', context: { cluster: 'cce-cluster', user: 'token-user' } }, { name: 'exec', context: { cluster: 'cce-cluster', user: 'exec-user' } }],
  }
}

t.test('kubeconfig with file paths (relative to it), used end to end', async (t) => {
  const upstream = await whoamiUpstream(t)
  const file = await kubeconfig('paths.yaml', kubeDoc(upstream.url, { 'client-certificate': 'client.crt', 'client-key': 'client.key' }))
  const c = await load(['--kubeconfig', file])
  t.equal(c.server.url.origin, upstream.url)
  t.match(c.sources, { ca: { kind: 'file', path: files.cacert }, cert: { path: files.cert }, key: { path: files.key } })
  t.ok(c.sources.watch.includes(file), 'the kubeconfig itself is watched')
  const proxy = await startProxy(t, upstream.url, files, ['--kubeconfig', file])
  t.equal((await get(`${proxy.url}/whoami`)).json().cn, 'demo-admin')
})

t.test('kubeconfig with -data fields; context selection; flags override it', async (t) => {
  const other = await pki.ca.issue({ commonName: 'flag-user', usage: 'client' })
  await writeFile(join(dir, 'flag.crt'), other.certPem)
  await writeFile(join(dir, 'flag.key'), other.keyPem, { mode: 0o600 })
  const file = await kubeconfig('data.yaml', kubeDoc('https://192.168.0.18:5443', { 'client-certificate-data': b64(pki.client.certPem), 'client-key-data': b64(pki.client.keyPem) }, { 'tls-server-name': 'kubernetes' }))
  const bundle = await load(['--kubeconfig', file])
  t.equal(bundle.server.url.origin, 'https://192.168.0.18:5443')
  t.equal(bundle.server.tlsServerName, 'kubernetes')
  t.equal(bundle.clientCertificate?.subject.includes('CN=demo-admin'), true)
  t.equal((await load(['--kubeconfig', file, '--context', 'other'])).server.url.origin, 'https://10.9.9.9:6443', '--context picks another')
  const flagged = await load(['--kubeconfig', file, '--upstream', 'https://127.0.0.1:1', '--cert', 'flag.crt', '--key', 'flag.key', '--tls-server-name', 'x'])
  t.equal(flagged.server.url.origin, 'https://127.0.0.1:1')
  t.equal(flagged.server.tlsServerName, 'x')
  t.match(flagged.clientCertificate?.subject, /CN=flag-user/)
})

t.test('kubeconfig mistakes are clear errors, never a silent fallback', async (t) => {
  const file = await kubeconfig('bad.yaml', kubeDoc('https://192.168.0.18:5443', { 'client-certificate': 'client.crt', 'client-key': 'client.key' }))
  t.equal((await load(['--kubeconfig', file, '--context', 'token'])).bearerToken, 'abc', 'a token alone is a credential now')
  await t.rejects(load(['--kubeconfig', file, '--context', 'exec']), { message: /the exec plugin of user 'exec-user' of context 'exec' .*apiVersion must be one of client\.authentication\.k8s\.io\/v1/ })
  await t.rejects(load(['--kubeconfig', file, '--context', 'nope']), { message: /no context named 'nope' \(--context\); it has 'cce', 'other', 'token', 'exec'$/ })
  await t.rejects(load(['--kubeconfig', join(dir, 'missing.yaml')]), { message: /cannot read kubeconfig .*missing\.yaml: no such file/ })
  t.throws(() => config(['--context', 'x', ...['--upstream', 'https://h:1', '--cacert', 'a', '--cert', 'b', '--key', 'c']]), { message: /--context picks from a kubeconfig, and none is read when --upstream or --cert is given; add --kubeconfig FILE/ })
  const insecure = await kubeconfig('insecure.yaml', kubeDoc('https://192.168.0.18:5443', { 'client-certificate': 'client.crt', 'client-key': 'client.key' }, { 'insecure-skip-tls-verify': true }))
  t.equal((await load(['--kubeconfig', insecure])).server.insecureSkipTlsVerify, true, 'honoured, as kubectl does (and warned about at start)')
  t.equal((await load(['--kubeconfig', insecure, '--insecure-skip-tls-verify'])).server.insecureSkipTlsVerify, true)
  // The usual such kubeconfig has no CA at all: none is asked for.
  const noCa = await kubeconfig('insecure-no-ca.yaml', kubeDoc('https://192.168.0.18:5443', { 'client-certificate': 'client.crt', 'client-key': 'client.key' },
    { 'insecure-skip-tls-verify': true, 'certificate-authority': '' }))
  t.equal((await load(['--kubeconfig', noCa])).caPem, undefined, 'no CA needed, as asked')
})

t.test('a kubeconfig that names another server on reload: refused whole, the first one still served', async (t) => {
  const file = await kubeconfig('moving.yaml', kubeDoc('https://192.168.0.18:5443', { 'client-certificate': 'client.crt', 'client-key': 'client.key' }))
  const { logger, lines } = capturedLogger()
  const store = await openCredentialStore(sourceOf(config(['--kubeconfig', file]).credentials), { logger })
  t.teardown(() => store.close())
  t.equal((await store.reload('test')).outcome, 'unchanged')
  await kubeconfig('moving.yaml', kubeDoc('https://192.168.0.19:5443', { 'client-certificate': 'client.crt', 'client-key': 'client.key' }))
  const refused = await store.reload('test')
  t.match(refused, { outcome: 'failed', error: /now name server https:\/\/192\.168\.0\.19:5443 .*bound to https:\/\/192\.168\.0\.18:5443 .*a restart follows the new server/ },
    'a new server is refused, counted as a failed reload')
  t.equal(store.current.server.url.href, 'https://192.168.0.18:5443/', 'the old bundle serves on')
  t.same(store.lastReload, refused, '/-/status shows it')
  const said = /certificate reload failed.*a restart follows the new server/
  await until(() => lines.some((l) => said.test(l)))
  t.match(JSON.parse(lines.find((l) => said.test(l))!), { level: 50 }, 'one error line')
})

t.test('PEM from environment variables, as text or base64 (a Secret passed as env)', async (t) => {
  const upstream = await whoamiUpstream(t)
  const env = {
    MTLS_PROXY_UPSTREAM: upstream.url,
    MTLS_PROXY_CACERT_DATA: pki.ca.certPem,
    MTLS_PROXY_CERT_DATA: b64(pki.client.certPem),
    MTLS_PROXY_KEY_DATA: pki.client.keyPem,
  }
  const bundle = await load([], env)
  t.match(bundle.sources, { ca: { kind: 'inline' }, cert: { kind: 'inline', label: 'MTLS_PROXY_CERT_DATA' }, key: { kind: 'inline' }, watch: [] })
  t.match(bundle.clientCertificate?.subject, /CN=demo-admin/)
  t.throws(() => loadConfig(['--cert-data', 'x'], {}, dir), { message: /^--cert-data has no flag: every local user sees a command line in ps\. Give MTLS_PROXY_CERT_DATA, or 'cert-data:' in a config file$/ }, 'key material is never taken from argv')
})

type ImportAlgorithm = webcrypto.AlgorithmIdentifier | webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams

async function certify (publicKey: KeyObject, alg: ImportAlgorithm, cn: string): Promise<string> {
  const spki = publicKey.export({ type: 'spki', format: 'der' })
  const key = await webcrypto.subtle.importKey('spki', spki, alg, true, ['verify'])
  return (await pki.ca.issue({ commonName: cn, usage: 'client', publicKey: key })).certPem
}

t.test('every key format works end to end: PKCS#1, PKCS#8, SEC1; RSA, ECDSA, Ed25519; encrypted', async (t) => {
  const upstream = await whoamiUpstream(t)
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const ed = generateKeyPairSync('ed25519')
  const rsaCert = await certify(rsa.publicKey, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, 'rsa-user')
  const ecCert = await certify(ec.publicKey, { name: 'ECDSA', namedCurve: 'P-256' }, 'ec-user')
  const edCert = await certify(ed.publicKey, { name: 'Ed25519' }, 'ed-user')
  const cases: Array<[string, string, string, string?]> = [
    ['RSA PKCS#1', rsaCert, rsa.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString()],
    ['RSA PKCS#8', rsaCert, rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()],
    ['ECDSA SEC1', ecCert, ec.privateKey.export({ type: 'sec1', format: 'pem' }).toString()],
    ['ECDSA PKCS#8', ecCert, ec.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()],
    ['Ed25519 PKCS#8', edCert, ed.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()],
    ['encrypted PKCS#8', ecCert, ec.privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 's3cret' }).toString(), 's3cret'],
    ['encrypted PKCS#1 (Proc-Type)', rsaCert, rsa.privateKey.export({ type: 'pkcs1', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'other' }).toString(), 'other'],
  ]
  for (const [name, cert, key, passphrase] of cases) {
    const slug = name.replace(/\W+/g, '-')
    await writeFile(join(dir, `${slug}.crt`), cert)
    await writeFile(join(dir, `${slug}.key`), key, { mode: 0o600 })
    const extra = ['--cert', join(dir, `${slug}.crt`), '--key', join(dir, `${slug}.key`)]
    if (passphrase) {
      await writeFile(join(dir, `${slug}.pass`), `${passphrase}\n`)
      t.rejects(load(['--upstream', upstream.url, '--cacert', files.cacert, ...extra]), { message: /the private key is encrypted; pass --key-passphrase-file/ }, `${name}: needs a passphrase`)
      await writeFile(join(dir, 'wrong.pass'), 'wrong\n')
      t.rejects(load(['--upstream', upstream.url, '--cacert', files.cacert, ...extra, '--key-passphrase-file', join(dir, 'wrong.pass')]), { message: /wrong passphrase/ }, `${name}: wrong passphrase`)
      extra.push('--key-passphrase-file', join(dir, `${slug}.pass`))
    }
    const proxy = await startProxy(t, upstream.url, files, extra)
    const res = await get(`${proxy.url}/whoami`)
    t.equal(res.json().cn, cert === rsaCert ? 'rsa-user' : cert === ecCert ? 'ec-user' : 'ed-user', `${name}: the upstream sees this identity`)
    await proxy.app.close()
  }
})

t.test('a key file readable by every user is warned about; one the group may read (a Secret volume with fsGroup) is not', async (t) => {
  // The group a Secret volume gives: another group than ours where we may set one (as root), else our own.
  const otherGroup = process.getuid?.() === 0 ? 65534 : undefined
  const cases: Array<[number, boolean]> = [[0o600, false], [0o640, false], [0o440, false], [0o644, true], [0o604, true]]
  for (const [mode, warned] of cases) {
    const octal = mode.toString(8).padStart(4, '0')
    const key = join(dir, `mode-${octal}.key`)
    await writeFile(key, pki.client.keyPem, { mode })
    await chmod(key, mode)
    if (mode === 0o440 && otherGroup !== undefined) await chown(key, process.getuid!(), otherGroup)
    const bundle = await load(['--upstream', 'https://h:1', '--cacert', files.cacert, '--cert', files.cert, '--key', key])
    if (warned) {
      t.match(bundle.warnings.join('\n'), new RegExp(`--key ${key} is readable by every user of this machine \\(mode ${octal}\\).*run: chmod 600 ${key}`), `${octal}: warned`)
    } else {
      t.same(bundle.warnings, [], `${octal}: no warning`)
    }
  }
})

t.test('warnings: a client certificate from another CA', async (t) => {
  const separate = await createCA('cluster server CA')
  await writeFile(join(dir, 'server-ca.crt'), separate.certPem)
  const other = await load(['--upstream', 'https://h:1', '--cacert', join(dir, 'server-ca.crt'), '--cert', files.cert, '--key', files.key])
  t.match(other.warnings.join('\n'), /is not signed by a CA in --cacert .*fine if the cluster signs client certificates with a separate CA/)
  const both = join(dir, 'bundle.crt')
  await writeFile(both, separate.certPem + pki.ca.certPem)
  const multi = await load(['--upstream', 'https://h:1', '--cacert', both, '--cert', files.cert, '--key', files.key])
  t.equal(multi.caCertificates.length, 2, 'a CA bundle with several certificates')
  t.equal(multi.warnings.length, 0, 'chains to the second CA of the bundle')
})
