// The proxy's own endpoints: answered here, never forwarded; readiness follows the upstream.
import t from 'tap'
import { pkiWithFiles } from '../helpers/pki.js'
import { echoHandler, startUpstream } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'
import { get } from '../helpers/http.js'
import { until } from '../helpers/until.js'

const { pki, files } = await pkiWithFiles(t)

t.test('/-/healthz and /-/readyz are answered by the proxy, never forwarded', async (t) => {
  const upstream = await startUpstream(t, pki, echoHandler)
  const proxy = await startProxy(t, upstream.url, files)
  await until(async () => (await get(`${proxy.url}/-/readyz`)).status === 200, 5_000)
  t.equal((await get(`${proxy.url}/-/healthz`)).body, 'ok')
  t.equal((await get(`${proxy.url}/-/readyz`)).body, 'ok')
  const unknown = await get(`${proxy.url}/-/metrics-nope`)
  t.equal(unknown.status, 404)
  t.equal(unknown.json().kind, 'Status')
  t.notOk(upstream.calls().some((r) => r.url.startsWith('/-/')), 'no /-/ request reached the upstream')
})

t.test('readiness: 503 with the reason while the upstream is down, 200 within seconds of its return', async (t) => {
  const first = await startUpstream(t, pki, echoHandler)
  const port = first.port
  await first.close()
  const PROBE_INTERVAL_MS = 5_000
  const proxy = await startProxy(t, `https://127.0.0.1:${port}`, files, ['--probe-interval', String(PROBE_INTERVAL_MS / 1000)])
  await until(async () => (await get(`${proxy.url}/-/readyz`)).status === 503, 5_000)
  const down = await get(`${proxy.url}/-/readyz`)
  t.equal(down.json().code, 503)
  t.equal(down.json().reason, 'ServiceUnavailable')
  t.match(down.json().message, /not ready: upstream 127\.0\.0\.1:\d+ refused the connection/)
  t.equal((await get(`${proxy.url}/-/healthz`)).status, 200, 'still healthy: the process serves')

  await startUpstream(t, pki, echoHandler, { port })
  const recovered = await until(async () => (await get(`${proxy.url}/-/readyz`)).status === 200, 3 * PROBE_INTERVAL_MS)
  // Checks every second while not ready: back before the next regular probe would have come.
  t.ok(recovered < PROBE_INTERVAL_MS, `ready again ${recovered} ms after the upstream returned (probe interval 5 s, recovery checks every 1 s)`)
})

t.test('readiness: an upstream answering 401 to the probe means our certificate is not accepted', async (t) => {
  const upstream = await startUpstream(t, pki, (_req, res) => {
    res.writeHead(401, { 'content-type': 'application/json' })
    res.end('{"kind":"Status","code":401}')
  })
  const proxy = await startProxy(t, upstream.url, files)
  await until(async () => (await get(`${proxy.url}/-/readyz`)).status === 503, 5_000)
  t.match((await get(`${proxy.url}/-/readyz`)).json().message, /401 Unauthorized\): it may have expired or been revoked/)
})
