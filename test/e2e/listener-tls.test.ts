// HTTPS on the listener (--listen-cert, --listen-key): kubectl sends a --token only to an https://
// server, so this is how a proxy that asks for a token serves kubectl. Rotated like the client
// certificate; the 401 message says what works for what the listener speaks.
import { execFile, execFileSync } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { connect as tlsConnect } from 'node:tls'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { clientFlags } from '../helpers/proxy.js'
import { Agent, request } from 'undici'
import WebSocket from 'ws'
import { createCA, pkiWithFiles } from '../helpers/pki.js'
import { runCli, startCli } from '../helpers/cli.js'
import { findKubectl, NO_KUBECTL } from '../helpers/kubectl.js'
import { startDemoUpstream } from '../helpers/upstream.js'
import { until } from '../helpers/until.js'
import { tempDir } from '../helpers/temp.js'

const run = promisify(execFile)
const TOKEN = 'f00dfeedf00dfeedf00dfeedf00dfeed'
const kubectl = findKubectl()

const { pki, files } = await pkiWithFiles(t)
const api = await startDemoUpstream(t, pki)
// The listener's own certificate, from a CA of its own: nothing to do with the cluster's.
const listenerCa = await createCA('mtls-proxy listener CA')
const listener = await listenerCa.issue({ commonName: 'mtls-proxy', usage: 'server', ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'] })
const dir = files.dir
const paths = { ca: join(dir, 'listener-ca.crt'), cert: join(dir, 'listener.crt'), key: join(dir, 'listener.key'), token: join(dir, 'token') }
await writeFile(paths.ca, listenerCa.certPem)
await writeFile(paths.cert, listener.certPem)
await writeFile(paths.key, listener.keyPem, { mode: 0o600 })
await writeFile(paths.token, `${TOKEN}\n`, { mode: 0o600 })
const base = [...clientFlags(api.url, files), '--token-file', paths.token]
const proxy = await startCli(t, [...base, '--listen-cert', paths.cert, '--listen-key', paths.key])
const trusting = new Agent({ connect: { ca: listenerCa.certPem } })
t.teardown(() => trusting.close())

function peerSerial (port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: listenerCa.certPem, servername: 'localhost' }, () => {
      resolve(socket.getPeerCertificate().serialNumber)
      socket.destroy()
    })
    socket.on('error', reject)
  })
}

t.test('it serves HTTPS with the given certificate; a token is asked for and accepted', async (t) => {
  t.match(proxy.url, /^https:\/\/127\.0\.0\.1:\d+$/, 'the serving line says https')
  const none = await request(`${proxy.url}/api/v1/namespaces/default/pods`, { dispatcher: trusting })
  t.equal(none.statusCode, 401)
  t.match(await none.body.text(), /with kubectl: --token \\"\$\(cat TOKEN_FILE\)\\"/, 'over HTTPS the hint is kubectl --token')
  const ok = await request(`${proxy.url}/api/v1/namespaces/default/pods`, { dispatcher: trusting, headers: { authorization: `Bearer ${TOKEN}` } })
  t.equal(ok.statusCode, 200)
  t.match(await ok.body.json(), { kind: 'PodList' })
})

t.test('kubectl --server https://… --certificate-authority … --token: get pods, and a clear error without the token', { skip: kubectl ? false : NO_KUBECTL }, async (t) => {
  const home = await tempDir(t, 'kubectl')
  const env = { PATH: process.env.PATH, HOME: home, KUBECONFIG: join(home, 'none') }
  const k = (...args: string[]) => {
    const running = run(kubectl!, ['--server', proxy.url, '--certificate-authority', paths.ca, '--cache-dir', join(home, 'cache'), ...args], { env, timeout: 30_000 })
    // Refused without credentials, kubectl would ask for a user name on stdin.
    running.child.stdin?.end()
    return running
  }
  const table = await k('--token', TOKEN, 'get', 'pods')
  t.match(table.stdout, /web-7d4b9c6f5-abcde\s+1\/1\s+Running/)
  // (With no credentials at all kubectl asks for a user name instead of printing what the server said.)
  const refused = await k('--token', 'not-the-token-0000000000', 'get', 'pods').then(() => '', (err: { stderr: string }) => err.stderr)
  t.match(refused, /You must be logged in to the server \(mtls-proxy needs Authorization: Bearer .*the token sent is not it/, 'kubectl prints the proxy\'s message')
})

t.test('exec over wss:// with the token', async (t) => {
  const ws = new WebSocket(`${proxy.url.replace('https', 'wss')}/api/v1/namespaces/default/pods/web-7d4b9c6f5-abcde/exec?command=echo&command=hi&stdout=true`,
    ['v5.channel.k8s.io'], { ca: listenerCa.certPem, headers: { authorization: `Bearer ${TOKEN}` } })
  const frames: Buffer[] = []
  ws.on('message', (d: Buffer) => frames.push(d))
  await new Promise((resolve, reject) => { ws.once('close', resolve); ws.once('error', reject) })
  t.equal(ws.protocol, 'v5.channel.k8s.io')
  t.ok(frames.some((f) => f[0] === 1 && f.subarray(1).toString() === 'hi\n'), 'stdout on channel 1')
})

t.test('a rotated listener certificate is served to new connections without a restart', async (t) => {
  const before = await peerSerial(proxy.port)
  const rotated = await listenerCa.issue({ commonName: 'mtls-proxy rotated', usage: 'server', ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'] })
  await writeFile(paths.key, rotated.keyPem, { mode: 0o600 })
  await writeFile(paths.cert, rotated.certPem)
  await until(async () => (await peerSerial(proxy.port)) !== before, 5_000)
  t.pass('new connections see the new certificate')
})

t.test('a listener pair OpenSSL will not serve (a 512-bit RSA key) is a failed reload: the old certificate serves on', async (t) => {
  const before = await peerSerial(proxy.port)
  const weak = join(dir, 'weak')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:512', '-nodes', '-days', '3', '-subj', '/CN=weak', '-keyout', `${weak}.key`, '-out', `${weak}.crt`], { stdio: 'ignore' })
  await writeFile(paths.key, await readFile(`${weak}.key`))
  await writeFile(paths.cert, await readFile(`${weak}.crt`))
  await until(() => proxy.logs().some((l) => String(l.msg).startsWith('certificate reload failed') && /cannot serve HTTPS with this certificate and key/.test(String(l.error))), 10_000)
  t.equal(proxy.child.exitCode, null, 'still running')
  t.equal(await peerSerial(proxy.port), before, 'the previous certificate is still served')
})

t.test('the listener certificate is watched for expiry like the others', async (t) => {
  const res = await request(`${proxy.url}/-/status`, { dispatcher: trusting, headers: { authorization: `Bearer ${TOKEN}` } })
  const report = await res.body.json() as { certificates: Array<{ role: string; subject: string }> }
  t.ok(report.certificates.some((c) => c.role === 'listener' && /CN=mtls-proxy/.test(c.subject)), 'a listener entry in /-/status')
})

t.test('a plain-HTTP proxy with a token says kubectl needs HTTPS, not to pass --token', async (t) => {
  const plain = await startCli(t, base)
  const res = await request(`${plain.url}/api/v1/namespaces/default/pods`)
  const body = await res.body.json() as { message: string }
  t.equal(res.statusCode, 401)
  t.match(body.message, /kubectl sends a token only to an https:\/\/ server, so start the proxy with --listen-cert and --listen-key/)
})

t.test('--listen-cert without --listen-key, or a key of another certificate: one line, exit 2', async (t) => {
  const alone = await runCli([...base, '--listen-cert', paths.cert])
  t.equal(alone.code, 2)
  t.match(alone.stderr, /--listen-cert and --listen-key go together/)
  const wrong = await runCli([...base, '--listen-cert', paths.cert, '--listen-key', files.key])
  t.equal(wrong.code, 2)
  t.match(wrong.stderr, /--listen-key .* does not match the certificate in --listen-cert/)
})
