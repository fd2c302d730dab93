// "Did you mean …?" (src/settings/suggest.ts): a close candidate, or the only one the typed text
// begins; never a guess for a word too short to tell.
import t from 'tap'
import { nearest } from '../../../src/settings/suggest.js'

const FLAGS = ['port', 'address', 'upstream', 'cacert', 'cert', 'key', 'token-file', 'context', 'config', 'cluster', 'user',
  'access-log', 'no-access-log', 'workers', 'kubeconfig']

t.test('the nearest flag: at most two edits, and at most a third of what was typed', async (t) => {
  const cases: Array<[string, string | undefined]> = [
    ['prot', 'port'], // two neighbours swapped: one edit
    ['upstrem', 'upstream'],
    ['upstrm', 'upstream'], // two edits
    ['UPSTREAM', 'upstream'], // case is no edit
    ['cacrt', 'cacert'], // the closest, not the first within reach
    ['kee', 'key'],
    ['workrs', 'workers'],
    ['no-acess-log', 'no-access-log'],
    ['ky', undefined], // two letters: one edit would be half of it
    ['upsrm', undefined], // three edits
    ['banana', undefined],
  ]
  for (const [typed, expected] of cases) t.equal(nearest(typed, FLAGS), expected, typed)
})

t.test('else the one flag the typed text begins', async (t) => {
  t.equal(nearest('token', FLAGS), 'token-file')
  t.equal(nearest('acc', FLAGS), 'access-log')
  t.equal(nearest('con', FLAGS), undefined, 'context and config both begin so: no guess')
  t.equal(nearest('co', FLAGS), undefined, 'under three letters: no guess')
  t.equal(nearest('', FLAGS), undefined)
})

t.test('variables: MTLS_PROXY_ names', async (t) => {
  const variables = ['MTLS_PROXY_UPSTREAM', 'MTLS_PROXY_PORT', 'MTLS_PROXY_KEY', 'MTLS_PROXY_KEY_DATA']
  t.equal(nearest('MTLS_PROXY_UPSTREM', variables), 'MTLS_PROXY_UPSTREAM')
  t.equal(nearest('mtls_proxy_port', variables), 'MTLS_PROXY_PORT')
  t.equal(nearest('MTLS_PROXY_KEY_DAT', variables), 'MTLS_PROXY_KEY_DATA')
  t.equal(nearest('MTLS_PROXY_NOTHING_LIKE_IT', variables), undefined)
})
