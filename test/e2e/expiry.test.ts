// Expiry warnings with an injected clock: no sleeping for days.
import { X509Certificate } from 'node:crypto'
import t from 'tap'
import { pkiWithFiles } from '../helpers/pki.js'
import { echoHandler, startUpstream } from '../helpers/upstream.js'
import { get } from '../helpers/http.js'
import { expiryMessage, reportCertificate } from '../../src/clusters/expiry.js'
import { startProxy } from '../helpers/proxy.js'

const DAY = 86_400_000
const { pki, files } = await pkiWithFiles(t)
const client = new X509Certificate(pki.client.certPem)
const notAfter = new Date(client.validTo).getTime()
const thresholds = { warningDays: 30, criticalDays: 7 }

t.test('levels follow the thresholds', async (t) => {
  const at = (daysLeft: number) => reportCertificate('client', client, new Date(notAfter - daysLeft * DAY), thresholds)
  t.equal(at(60).level, 'ok')
  t.equal(at(29.5).level, 'warning')
  t.equal(at(6.9).level, 'critical')
  t.equal(at(-1).level, 'expired')
  t.equal(at(20).daysLeft, 20)
  const custom = reportCertificate('client', client, new Date(notAfter - 40 * DAY), { warningDays: 45, criticalDays: 14 })
  t.equal(custom.level, 'warning', 'thresholds are configurable')
})

t.test('the warning line names the certificate, its end, the days left and what to do', async (t) => {
  const r = reportCertificate('client', client, new Date(notAfter - 12 * DAY), thresholds)
  t.match(r, { role: 'client', subject: 'CN=demo-admin, O=system:masters', serial: client.serialNumber, notAfter: new Date(notAfter).toISOString() })
  t.equal(expiryMessage(r), `client certificate CN=demo-admin, O=system:masters (serial ${client.serialNumber}) expires on ${new Date(notAfter).toISOString()}, 12 days left: download a new client certificate from your cluster's console (or renew it) before then`)
  const expired = reportCertificate('ca', new X509Certificate(pki.ca.certPem), new Date(Date.now() + 400 * DAY), thresholds)
  t.match(expiryMessage(expired), /^CA certificate CN=mtls-proxy demo CA \(serial [0-9A-F]+\) expired on .*; get the cluster's new CA certificate$/)
})

t.test('the app logs, reports in /-/status and turns not ready as the clock moves', async (t) => {
  const upstream = await startUpstream(t, pki, echoHandler)
  let clock = Date.now()
  const proxy = await startProxy(t, upstream.url, files, ['--expiry-warning-days', '100'], { now: () => new Date(clock) })
  const { app, url } = proxy

  const reports = await app.clusters.main.expiry.check()
  t.same(reports.map((r) => r.role), ['client', 'ca', 'server'], 'client, each CA and the server certificate seen in the handshake')
  const warning = proxy.logs.find((l) => l.level === 40 && /^client certificate CN=demo-admin/.test(String(l.msg)))
  t.ok(warning, 'a 90-day certificate is inside a 100-day warning window')
  t.match(warning?.msg, /days left: download a new client certificate/)

  const status = (await get(`${url}/-/status`)).json<Record<string, unknown>>()
  t.match(status, { upstream: upstream.url, identity: 'CN=demo-admin, O=system:masters', lastReload: null })
  const certificates = status.certificates as Array<Record<string, unknown>>
  for (const c of certificates) {
    for (const field of ['role', 'subject', 'issuer', 'serial', 'notBefore', 'notAfter', 'daysLeft', 'fingerprint256', 'level']) t.ok(field in c, `${c.role}: ${field}`)
  }
  t.match(certificates.find((c) => c.role === 'server'), { subject: 'CN=kube-apiserver' })

  clock = notAfter + DAY
  const ready = await get(`${url}/-/readyz`)
  t.equal(ready.status, 503)
  t.match(ready.json().message, /not ready: the client certificate expired on/)
  await app.clusters.main.expiry.check()
  t.ok(proxy.logs.some((l) => l.level === 50 && /^client certificate .* expired on/.test(String(l.msg))), 'an expired certificate is logged at error level')
  t.equal((await get(`${url}/-/status`)).json<{ state: string }>().state, 'not ready')
})
