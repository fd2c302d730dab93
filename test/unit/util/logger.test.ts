// A terminal's log lines (src/util/logger.ts PRETTY, as pino-pretty writes them): readable in 100
// columns, an access line in words, no field the message says repeated after it as JSON.
import t from 'tap'
import { prettyFactory } from 'pino-pretty'
import { PRETTY } from '../../../src/util/logger.js'

const pretty = prettyFactory({ ...PRETTY, colorize: false })
const line = (fields: Record<string, unknown>) =>
  pretty({ level: 30, time: Date.now(), pid: 1, hostname: 'h', name: 'mtls-proxy', ...fields }).trimEnd().replace(/^\[[\d:.]+\] /, '')

t.test('what a terminal shows of each kind of line', async (t) => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ reqId: 'req-1', method: 'GET', url: '/api/v1/namespaces/default/pods', status: 200, bytesIn: 109, bytesOut: 2584, ms: 14.5, msg: 'request' },
      'INFO: request GET /api/v1/namespaces/default/pods 200 14.5 ms'],
    [{ method: 'GET', url: '/api/v1/pods?watch=1', status: 200, bytesIn: 1, bytesOut: 2, aborted: true, cluster: 'prod', ms: 900, msg: 'request' },
      'INFO: request GET /api/v1/pods?watch=1 200 900 ms {"aborted":true,"cluster":"prod"}'],
    [{ certificate: { role: 'client', subject: 'CN=demo', fingerprint256: 'CF:01:83' }, msg: 'client certificate CN=demo valid until 2027-03-08 (89.9 days)' },
      'INFO: client certificate CN=demo valid until 2027-03-08 (89.9 days)'],
    [{ listen: 'http://127.0.0.1:8001', upstream: 'https://10.0.0.1:6443/', identity: 'CN=demo', certificateNotAfter: 'x', credentialsExpire: 'x', msg: 'serving http://127.0.0.1:8001, forwarding to https://10.0.0.1:6443 as CN=demo' },
      'INFO: serving http://127.0.0.1:8001, forwarding to https://10.0.0.1:6443 as CN=demo'],
    [{ upstream: 'https://10.0.0.1:6443', reason: 'refused', msg: 'not ready: refused' }, 'INFO: not ready: refused'],
    [{ cluster: 'prod', status: 502, url: '/api', msg: 'a Location outside its cluster' }, 'INFO: a Location outside its cluster /api 502 {"cluster":"prod"}'],
  ]
  for (const [fields, shown] of cases) t.equal(line(fields), shown, String(fields.msg))
})
