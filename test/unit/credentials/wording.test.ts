// The credential in use, in the words of the lines about it (src/credentials/wording.ts): a client
// certificate is mutual TLS and reloaded from its files; a token is a bearer token, followed as it
// comes (a file, a kubeconfig, an exec plugin); where it came from is named for every kind.
import type { X509Certificate } from 'node:crypto'
import t from 'tap'
import { connectionOf, credentialNote, reloadedOf, type Held } from '../../../src/credentials/wording.js'
import type { ResolvedSources } from '../../../src/credentials/source.js'

const cert = {} as X509Certificate
const USER = "user 'u' of context 'dev' (kubeconfig /k.yaml)"
const PLUGIN = `the exec plugin of ${USER}`
const file = (label: string, path: string) => ({ kind: 'file' as const, path, label })

function held (sources: Partial<ResolvedSources>, clientCertificate?: X509Certificate): Held {
  const none = { cert: undefined, token: undefined, certificateFrom: undefined, tokenFrom: undefined, kubeconfigUser: undefined }
  return { sources: { ...none, ...sources } as ResolvedSources, clientCertificate }
}

t.test('what the start line says of each credential, beside the identity', async (t) => {
  const cases: Array<[string, Held, string]> = [
    ['certificate files given as flags', held({ cert: file('--cert', '/c/client.crt') }, cert),
      'the client certificate in --cert /c/client.crt; reloaded when its files change'],
    ['a kubeconfig user\'s certificate files', held({ cert: file('kubeconfig /k.yaml client-certificate', '/c/client.crt'), kubeconfigUser: USER }, cert),
      `the client certificate of ${USER}; reloaded when its files change`],
    ['a kubeconfig user\'s client-certificate-data', held({ cert: { kind: 'inline', pem: '…', label: 'kubeconfig /k.yaml client-certificate-data' }, kubeconfigUser: USER }, cert),
      `the client certificate of ${USER}; reloaded when the kubeconfig changes`],
    ['MTLS_PROXY_CERT_DATA', held({ cert: { kind: 'inline', pem: '…', label: 'MTLS_PROXY_CERT_DATA' } }, cert),
      'the client certificate in MTLS_PROXY_CERT_DATA; as given at start'],
    ['an exec plugin\'s certificate', held({ cert: { kind: 'inline', pem: '…', label: `the client certificate from ${PLUGIN}` }, certificateFrom: PLUGIN }, cert),
      `the client certificate from ${PLUGIN}; renewed from the exec plugin before it expires`],
    ['a certificate and a token', held({ cert: file('--cert', '/c/client.crt'), token: { kind: 'inline', token: 'x', label: `the token of ${USER}` } }, cert),
      'the client certificate in --cert /c/client.crt, with a bearer token; reloaded when its files change'],
    ['a tokenFile', held({ token: file(`tokenFile of ${USER}`, '/t/token'), kubeconfigUser: USER }),
      'a bearer token; followed when its file changes'],
    ['a kubeconfig token', held({ token: { kind: 'inline', token: 'x', label: `the token of ${USER}` }, kubeconfigUser: USER }),
      'a bearer token; reloaded when the kubeconfig changes'],
    ['an exec plugin\'s token', held({ token: { kind: 'inline', token: 'x', label: `the token from ${PLUGIN}` }, tokenFrom: PLUGIN }),
      'a bearer token; renewed from the exec plugin before it expires'],
  ]
  for (const [name, given, said] of cases) {
    t.equal(credentialNote(given), said, name)
    t.notMatch(credentialNote(given), /\bx\b.*token|…/, `${name}: no secret in it`)
  }
})

t.test('the connection and the reload, worded for the credential', async (t) => {
  const certificate = held({ cert: file('--cert', '/c/client.crt') }, cert)
  const token = held({ token: file('--upstream-token-file', '/t/token') })
  t.equal(connectionOf(certificate), 'mutual TLS')
  t.equal(connectionOf(token), 'TLS with the bearer token')
  t.same(reloadedOf(certificate), { what: 'certificates', unchanged: 'certificate files unchanged' })
  t.same(reloadedOf(token), { what: 'the token', unchanged: 'token unchanged' })
})
