// The warning at start for a listener beyond loopback (src/settings/listening.ts exposure): it names the
// exposure there is, which --token-file narrows to those who hold the token, and --listen-cert keeps off the wire.
import t from 'tap'
import { exposure } from '../../../src/settings/listening.js'

const token = { kind: 'file', path: '/etc/mtls-proxy/token' } as never
const as = 'CN=demo-admin, O=system:masters'

t.test('what each listener is told', async (t) => {
  const cases: Array<[string, Parameters<typeof exposure>[0], string | undefined]> = [
    ['loopback', { address: '127.0.0.1', unixSocket: undefined, callerToken: undefined, https: false }, undefined],
    ['IPv6 loopback', { address: '::1', unixSocket: undefined, callerToken: token, https: false }, undefined],
    ['a Unix socket', { address: '0.0.0.0', unixSocket: '/run/p.sock', callerToken: undefined, https: false }, undefined],
    ['no token (--allow-unauthenticated)', { address: '0.0.0.0', unixSocket: undefined, callerToken: undefined, https: false },
      `listening on non-loopback address 0.0.0.0 with no --token-file: anyone who can reach it acts as ${as}`],
    ['a token over HTTPS', { address: '10.0.0.5', unixSocket: undefined, callerToken: token, https: true },
      `listening on non-loopback address 10.0.0.5: anyone who can reach it and holds the --token-file token acts as ${as}`],
    ['a token over plain HTTP', { address: '10.0.0.5', unixSocket: undefined, callerToken: token, https: false },
      `listening on non-loopback address 10.0.0.5: anyone who can reach it and holds the --token-file token acts as ${as}; ` +
      'the token travels in clear text (and kubectl will not send it over http:// at all) unless --listen-cert and --listen-key serve HTTPS'],
  ]
  for (const [name, config, said] of cases) t.equal(exposure(config, as), said, name)
})
