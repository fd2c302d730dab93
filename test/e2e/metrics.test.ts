// /-/metrics: names, labels and values; and the status listener that serves only the /-/ endpoints.
import { X509Certificate } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import t from 'tap'
import WebSocket from 'ws'
import { pkiWithFiles } from '../helpers/pki.js'
import { echoHandler, startUpstream } from '../helpers/upstream.js'
import { clientFlags, startProxy } from '../helpers/proxy.js'
import { startCli } from '../helpers/cli.js'
import { get, rawRequest, statusLine } from '../helpers/http.js'
import { startTunnelUpstream } from '../helpers/tunnel-upstream.js'
import { until } from '../helpers/until.js'

/** The value of one sample, labels matched as a subset; undefined when absent. */
function sample (text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m || m[1] !== name) continue
    const found = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]))
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) return Number(m[3])
  }
  return undefined
}

const metricsOf = async (url: string) => (await get(`${url}/-/metrics`)).body

t.test('requests, durations, bytes and upstream errors are counted', async (t) => {
  const { pki, files } = await pkiWithFiles(t)
  const upstream = await startUpstream(t, pki, echoHandler)
  const proxy = await startProxy(t, upstream.url, files)
  for (let i = 0; i < 3; i++) await get(`${proxy.url}/api/v1/pods`)
  await get(`${proxy.url}/api/v1/pods`, { method: 'POST', body: 'x'.repeat(500), headers: { 'content-type': 'application/json' } })
  await get(`${proxy.url}/api/v1/pods`, { headers: { host: 'evil.example' } })
  let text = await metricsOf(proxy.url)
  t.equal(sample(text, 'mtls_proxy_requests_total', { method: 'GET', code: '200' }), 3)
  t.equal(sample(text, 'mtls_proxy_requests_total', { method: 'POST', code: '200' }), 1)
  t.equal(sample(text, 'mtls_proxy_requests_total', { method: 'GET', code: '403' }), 1, 'refusals are counted too')
  t.equal(sample(text, 'mtls_proxy_request_duration_seconds_count', { method: 'GET' }), 4)
  t.ok(sample(text, 'mtls_proxy_received_bytes_total')! > 500)
  t.ok(sample(text, 'mtls_proxy_sent_bytes_total')! > 100)
  t.equal(sample(text, 'mtls_proxy_requests_in_flight'), 1, 'the /-/metrics request itself is in flight')
  t.ok(sample(text, 'mtls_proxy_process_cpu_seconds_total') !== undefined, 'Node process metrics')
  t.match(text, /# HELP mtls_proxy_upstream_errors_total/)

  await upstream.close()
  await get(`${proxy.url}/api/v1/pods`)
  await get(`${proxy.url}/api/v1/pods`)
  text = await metricsOf(proxy.url)
  t.equal(sample(text, 'mtls_proxy_upstream_errors_total', { cause: 'refused' }), 2)
  t.equal(sample(text, 'mtls_proxy_requests_total', { method: 'GET', code: '502' }), 2)
})

t.test('certificate gauges equal the certificates\' dates; reloads are counted', async (t) => {
  const { pki, files } = await pkiWithFiles(t)
  const upstream = await startUpstream(t, pki, echoHandler)
  const proxy = await startProxy(t, upstream.url, files)
  await proxy.app.clusters.main.expiry.check()
  const client = new X509Certificate(pki.client.certPem)
  const ca = new X509Certificate(pki.ca.certPem)
  const server = new X509Certificate(pki.server.certPem)
  let text = await metricsOf(proxy.url)
  const clientLabels = { role: 'client', subject: 'CN=demo-admin, O=system:masters', serial_number: client.serialNumber }
  t.equal(sample(text, 'x509_cert_not_after', clientLabels), Date.parse(client.validTo) / 1000, 'client notAfter, Unix seconds')
  t.equal(sample(text, 'x509_cert_not_before', clientLabels), Date.parse(client.validFrom) / 1000)
  t.equal(sample(text, 'x509_cert_expired', clientLabels), 0)
  t.equal(sample(text, 'x509_cert_not_after', { role: 'ca', serial_number: ca.serialNumber }), Date.parse(ca.validTo) / 1000)
  t.equal(sample(text, 'x509_cert_not_after', { role: 'server', subject: 'CN=kube-apiserver', serial_number: server.serialNumber }), Date.parse(server.validTo) / 1000)
  t.equal(sample(text, 'mtls_proxy_certificate_last_reload_success_timestamp_seconds'), 0)

  const rotated = await pki.ca.issue({ commonName: 'rotated', usage: 'client' })
  await writeFile(files.key, rotated.keyPem)
  await writeFile(files.cert, rotated.certPem)
  const before = Date.now() / 1000
  await proxy.app.clusters.main.credentials.reload('test')
  await writeFile(files.cert, 'broken')
  await proxy.app.clusters.main.credentials.reload('test')
  text = await metricsOf(proxy.url)
  t.ok(sample(text, 'mtls_proxy_certificate_reloads_total', { outcome: 'reloaded' })! >= 1)
  t.ok(sample(text, 'mtls_proxy_certificate_reloads_total', { outcome: 'failed' })! >= 1)
  t.ok(sample(text, 'mtls_proxy_certificate_last_reload_success_timestamp_seconds')! >= Math.floor(before))
  const newSerial = new X509Certificate(rotated.certPem).serialNumber
  t.equal(sample(text, 'x509_cert_not_after', { role: 'client', serial_number: newSerial }), Date.parse(new X509Certificate(rotated.certPem).validTo) / 1000)
  t.equal(sample(text, 'x509_cert_not_after', { role: 'client', serial_number: client.serialNumber }), undefined, 'the old client certificate is gone')
})

t.test('open watches and tunnels are gauges', async (t) => {
  const { pki, files } = await pkiWithFiles(t)
  const { upstream } = await startTunnelUpstream(t, pki)
  const proxy = await startProxy(t, upstream.url, files)
  const watch = await new Promise<IncomingMessage>((resolve, reject) => httpRequest(`${proxy.url}/api/v1/pods?watch=1`, resolve).on('error', reject).end())
  const ws = new WebSocket(`ws://127.0.0.1:${proxy.port}/api/v1/namespaces/default/pods/web/exec?command=sh`, ['v5.channel.k8s.io'])
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  const text = await metricsOf(proxy.url)
  t.equal(sample(text, 'mtls_proxy_open_watches'), 0, 'the tunnel upstream answers watches at once (not long-running there)')
  t.equal(sample(text, 'mtls_proxy_open_tunnels'), 1)
  ws.close()
  watch.destroy()
  await until(async () => sample(await metricsOf(proxy.url), 'mtls_proxy_open_tunnels') === 0)
  t.equal(sample(await metricsOf(proxy.url), 'mtls_proxy_requests_total', { method: 'GET', code: '101' }), 1, 'a tunnel counts as a request with code 101')
})

t.test('a watch held open is an open watch', async (t) => {
  const { pki, files } = await pkiWithFiles(t)
  const upstream = await startUpstream(t, pki, (req, res) => {
    if (!req.url?.includes('watch=1')) { echoHandler(req, res); return }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.write('{"type":"ADDED"}\n')
  })
  const proxy = await startProxy(t, upstream.url, files)
  const watch = await new Promise<IncomingMessage>((resolve, reject) => httpRequest(`${proxy.url}/api/v1/pods?watch=1`, resolve).on('error', reject).end())
  t.equal(sample(await metricsOf(proxy.url), 'mtls_proxy_open_watches'), 1)
  watch.destroy()
  await until(async () => sample(await metricsOf(proxy.url), 'mtls_proxy_open_watches') === 0)
})

/** The CLI with a status listener on `address`; the status URL it logged. */
async function withStatusListener (t: Parameters<typeof pkiWithFiles>[0], address: string, extra: string[] = []) {
  const { pki, files } = await pkiWithFiles(t)
  const upstream = await startUpstream(t, pki, echoHandler)
  const proxy = await startCli(t, [...clientFlags(upstream.url, files), '--status-address', address, ...extra])
  const status = proxy.logs().find((l) => typeof l.status === 'string')?.status as string
  return { upstream, proxy, status }
}

t.test('--status-address on a wildcard address serves the four /-/ endpoints to probes, and proxies nothing', async (t) => {
  const { upstream, proxy, status } = await withStatusListener(t, '0.0.0.0:0')
  t.match(status, /^http:\/\/0\.0\.0\.0:\d+$/)
  await until(async () => (await get(`${status}/-/readyz`)).status === 200, 5_000)
  // kubelet probes and Prometheus address the pod IP: any Host, since nothing is proxied
  t.equal((await get(`${status}/-/healthz`, { headers: { host: '10.1.2.3:9090' } })).body, 'ok')
  t.equal((await get(`${status}/-/status`, { headers: { host: '10.1.2.3:9090' } })).status, 200)
  // but no web page may read the report (identity, upstream, serials)
  const page = await get(`${status}/-/status`, { headers: { origin: 'https://evil.example' } })
  t.equal(page.status, 403, 'a page\'s Origin is refused')
  t.match(page.json().message, /requests from web pages are refused/)
  t.equal((await get(`${status}/-/metrics`, { headers: { 'sec-fetch-site': 'cross-site' } })).status, 403, 'Sec-Fetch-Site: cross-site is refused')
  t.equal((await get(`${status}/-/status`, { headers: { host: 'evil.example:9090', origin: 'http://evil.example:9090' } })).status, 403, 'an Origin matching an unchecked Host is no pass here')
  t.equal((await get(`${status}/-/readyz`)).body, 'ok')
  t.equal((await get(`${status}/-/status`)).json().state, 'ready')
  t.match((await get(`${status}/-/metrics`)).body, /mtls_proxy_requests_total|x509_cert_not_after/)
  const before = upstream.calls().length
  for (const path of ['/api/v1/pods', '/version', '/', '/-/nope']) {
    const res = await get(`${status}${path}`)
    t.equal(res.status, 404, `${path} is not served`)
    t.equal(res.json().kind, 'Status')
  }
  t.equal(upstream.calls().length, before, 'nothing reached the upstream')
  proxy.child.kill('SIGTERM')
  t.equal((await proxy.exited).code, 0)
})

t.test('a status listener on loopback accepts its own address as Host, not the main listener\'s', async (t) => {
  const { proxy, status } = await withStatusListener(t, '127.0.0.1:0', ['--address', '127.0.0.2'])
  const port = new URL(status).port
  t.equal((await get(`${status}/-/healthz`, { headers: { host: `127.0.0.1:${port}` } })).status, 200, 'its own address')
  const other = await get(`${status}/-/status`, { headers: { host: `127.0.0.2:${port}` } })
  t.equal(other.status, 403, 'the main listener\'s address is no name of this one')
  t.match(other.json().message, /Host '127\.0\.0\.2:\d+' is not accepted/)
  proxy.child.kill('SIGTERM')
  t.equal((await proxy.exited).code, 0)
})

t.test('--status-address on loopback checks Host as the main listener does (DNS rebinding)', async (t) => {
  const { proxy, status } = await withStatusListener(t, '127.0.0.1:0')
  t.match(status, /^http:\/\/127\.0\.0\.1:\d+$/)
  t.equal((await get(`${status}/-/healthz`)).status, 200, 'Host 127.0.0.1 is served')
  t.equal((await get(`${status}/-/healthz`, { headers: { host: `localhost:${new URL(status).port}` } })).status, 200, 'Host localhost too')
  const rebound = await get(`${status}/-/status`, { headers: { host: 'rebound.evil.example:9090' } })
  t.equal(rebound.status, 403, 'a rebound name is refused')
  t.match(rebound.json().message, /Host 'rebound\.evil\.example:9090' is not accepted/)
  t.equal((await get(`${status}/-/status`, { headers: { origin: 'http://localhost:3000' } })).status, 403, 'a page\'s Origin is refused')
  const absolute = await rawRequest(Number(new URL(status).port), `GET http://127.0.0.1:${proxy.port}/-/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`)
  t.equal(statusLine(absolute), 403, 'absolute-form naming another listener is refused')
  const upgrade = await rawRequest(Number(new URL(status).port), 'GET /-/status HTTP/1.1\r\nHost: evil.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n')
  t.equal(statusLine(upgrade), 403, 'an Upgrade request meets the same guard')
  proxy.child.kill('SIGTERM')
  t.equal((await proxy.exited).code, 0)
})
