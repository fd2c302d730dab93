// The handshake before serving: a server --cacert does not vouch for is a configuration error;
// an unreachable one is not (a sidecar may start before the network does).
import type { ChildProcess } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { createServer as createHttpServer } from 'node:http'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import t from 'tap'
import { clientFlags } from '../helpers/proxy.js'
import { freePort } from '../helpers/net.js'
import { createCA, pkiWithFiles } from '../helpers/pki.js'
import { echoHandler, startUpstream } from '../helpers/upstream.js'
import { runCli, startCli } from '../helpers/cli.js'
import { get } from '../helpers/http.js'
import { startMtlsServer } from '../../src/demo/api-server.js'

const { pki, files } = await pkiWithFiles(t)
const flags = (url: string) => clientFlags(url, files)

t.test('an upstream certificate from another CA stops the start: one line, exit 2', async (t) => {
  const impostorCA = await createCA('impostor')
  const impostor = await startMtlsServer({ clientCaPem: pki.ca.certPem, serverCert: await impostorCA.issue({ commonName: 'x', usage: 'server' }), handler: echoHandler })
  t.teardown(() => impostor.close())
  const result = await runCli([...flags(impostor.url), '--port', '0'])
  t.equal(result.code, 2)
  t.equal(result.stderr.trim().split('\n').length, 1)
  t.match(result.stderr, /^mtls-proxy: upstream certificate is not signed by the CA in --cacert/)
})

t.test('an upstream certificate for another name stops the start and names the fix', async (t) => {
  const other = await pki.ca.issue({ commonName: 'api', usage: 'server', dnsNames: ['api.internal'], ipAddresses: [] })
  const server = await startMtlsServer({ clientCaPem: pki.ca.certPem, serverCert: other, handler: echoHandler })
  t.teardown(() => server.close())
  const result = await runCli([...flags(server.url), '--port', '0'])
  t.equal(result.code, 2)
  t.match(result.stderr, /^mtls-proxy: upstream certificate is not valid for the name '127\.0\.0\.1'; set --tls-server-name to a name it holds \(DNS:api\.internal\)/, 'and lists the names it holds')
})

t.test('one handshake at start: the first probe\'s connection serves the first request and shows the server certificate', async (t) => {
  const upstream = await startUpstream(t, pki, echoHandler)
  const proxy = await startCli(t, [...flags(upstream.url), '--probe-interval', '60'])
  t.equal(upstream.seen.filter((r) => r.headers['user-agent'] === 'mtls-proxy-readiness').length, 1, 'probed once, before serving')
  t.equal((await get(`${proxy.url}/-/readyz`)).status, 200, 'ready as soon as it serves')
  t.equal((await get(`${proxy.url}/version`)).status, 200)
  t.equal(upstream.connections, 1, 'the first request went over the probe\'s connection: no handshake of its own, none for the expiry check')
  const status = (await get(`${proxy.url}/-/status`)).json<{ certificates: Array<{ role: string }> }>()
  t.ok(status.certificates.some((c) => c.role === 'server'), 'the server certificate, from that handshake')
  t.ok(proxy.logs().some((l) => /^server certificate .* valid until/.test(String(l.msg))))
  proxy.child.kill('SIGTERM')
  t.equal((await proxy.exited).code, 0)
})

t.test('an upstream slow to answer does not keep the port closed: the proxy serves within a second of the handshake', async (t) => {
  const held: Array<() => void> = []
  const upstream = await startUpstream(t, pki, (req, res) => {
    if (req.headers['user-agent'] === 'mtls-proxy-readiness') held.push(() => echoHandler(req, res))
    else echoHandler(req, res)
  })
  // startCli resolves once the proxy says it serves: the probe is still held.
  const proxy = await startCli(t, [...flags(upstream.url), '--probe-interval', '60'])
  t.equal(held.length, 1, 'the first probe is waiting for its answer')
  t.equal((await get(`${proxy.url}/-/readyz`)).status, 503, 'not ready before the answer')
  t.notOk(proxy.logs().some((l) => /not reachable yet/.test(String(l.msg))), 'a slow answer is not an unreachable upstream')
  t.equal((await get(`${proxy.url}/version`)).status, 200, 'requests are served meanwhile')
  t.equal((await get(`${proxy.url}/-/readyz`)).status, 200, 'and proxied traffic counts for readiness')
  for (const release of held.splice(0)) release()
  const started = Date.now()
  const said = () => proxy.logs().some((l) => /upstream reachable over mutual TLS: ready/.test(String(l.msg)))
  while (!said() && Date.now() - started < 5_000) await new Promise((resolve) => setTimeout(resolve, 25))
  t.ok(said(), 'ready, said once the log is written')
  proxy.child.kill('SIGTERM')
  t.equal((await proxy.exited).code, 0)
})

t.test('SIGHUP while the start-up probe waits: a reload, not the end of the proxy', async (t) => {
  // Takes TCP connections and never answers them: the probe's handshake waits for --connect-timeout.
  const sockets = new Set<Socket>()
  const silent = createServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
  })
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const socket of sockets) socket.destroy()
    silent.close()
  })
  let child: ChildProcess | undefined
  const starting = startCli(t, [...flags(`https://127.0.0.1:${(silent.address() as AddressInfo).port}`), '--connect-timeout', '3s'], {},
    { onSpawn: (c) => { child = c } })
  const started = Date.now()
  while (sockets.size === 0 && Date.now() - started < 10_000) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(sockets.size, 1, 'the probe is waiting for its handshake')
  child!.kill('SIGHUP')
  const proxy = await starting
  t.ok(proxy.logs().some((l) => l.msg === 'SIGHUP: reloading certificates'))
  t.equal((await get(`${proxy.url}/-/healthz`)).status, 200, 'serving')
  proxy.child.kill('SIGTERM')
  t.equal((await proxy.exited).code, 0)
})

t.test('an upstream port that speaks plain HTTP stops the start: one line that says so', async (t) => {
  const plain = createHttpServer((_req, res) => res.end('hello'))
  await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve))
  t.teardown(() => plain.close())
  const { port } = plain.address() as AddressInfo
  const result = await runCli([...flags(`https://127.0.0.1:${port}`), '--port', '0'])
  t.equal(result.code, 2)
  t.equal(result.stderr, `mtls-proxy: the API server at 127.0.0.1:${port} does not speak TLS on that port (is it plain HTTP? try the https port)\n`)
})

t.test('an unreachable upstream: serves, not ready, and says so', async (t) => {
  const port = await freePort()
  const proxy = await startCli(t, flags(`https://127.0.0.1:${port}`))
  t.ok(proxy.logs().some((l) => /upstream not reachable yet .*refused the connection.*serving anyway/.test(String(l.msg))))
  t.equal((await get(`${proxy.url}/-/healthz`)).status, 200)
  t.equal((await get(`${proxy.url}/-/readyz`)).status, 503)
  proxy.child.kill('SIGTERM')
  t.equal((await proxy.exited).code, 0)
})

t.test('at start: certificate validity logged, key permission warned; SIGHUP reloads', async (t) => {
  const upstream = await startUpstream(t, pki, echoHandler)
  await writeFile(`${files.key}.open`, pki.client.keyPem, { mode: 0o644 })
  const proxy = await startCli(t, ['--upstream', upstream.url, '--cacert', files.cacert, '--cert', files.cert, '--key', `${files.key}.open`])
  const logs = () => proxy.logs().map((l) => String(l.msg)).join('\n')
  t.match(logs(), /is readable by every user of this machine \(mode 0644\).*chmod 600/)
  proxy.child.kill('SIGHUP')
  const started = Date.now()
  while (!/SIGHUP: reloading certificates/.test(logs()) && Date.now() - started < 5_000) await new Promise((resolve) => setTimeout(resolve, 25))
  t.match(logs(), /SIGHUP: reloading certificates/)
  t.match(logs(), /client certificate CN=demo-admin, O=system:masters valid until/)
  t.equal((await get(`${proxy.url}/version`)).status, 200, 'still serving after SIGHUP')
  proxy.child.kill('SIGTERM')
  t.equal((await proxy.exited).code, 0)
})
