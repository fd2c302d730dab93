// Who else can read a key file (src/credentials/pem.ts): every user, or its owner when that is
// someone else; never the group a Kubernetes Secret volume gives its files (fsGroup: 0440).
import t from 'tap'
import { otherReaders, permissionWarning } from '../../../src/credentials/pem.js'

const ME = 1000
const ROOT = 0

t.test('a key file\'s mode and owner: who else can read it', async (t) => {
  const cases: Array<[string, { mode: number; uid: number }, number | undefined, RegExp | undefined]> = [
    ['0600, ours', { mode: 0o600, uid: ME }, ME, undefined],
    ['0400, ours', { mode: 0o400, uid: ME }, ME, undefined],
    ['0640, ours: our group only', { mode: 0o640, uid: ME }, ME, undefined],
    ['0440, root\'s, read through our group (a Secret volume with fsGroup)', { mode: 0o440, uid: ROOT }, ME, undefined],
    ['0640, root\'s, we are root', { mode: 0o640, uid: ROOT }, ROOT, undefined],
    ['0644, ours', { mode: 0o644, uid: ME }, ME, /^is readable by every user of this machine \(mode 0644\)$/],
    ['0604, ours', { mode: 0o604, uid: ME }, ME, /^is readable by every user of this machine \(mode 0604\)$/],
    ['0644, root\'s (a Secret volume without defaultMode)', { mode: 0o644, uid: ROOT }, ME, /every user of this machine \(mode 0644\)/],
    ['0004, nobody\'s but others\'', { mode: 0o004, uid: ME }, ME, /every user of this machine \(mode 0004\)/],
    ['0400, another user\'s, read through our being root', { mode: 0o400, uid: 1001 }, ROOT, /^belongs to uid 1001, who can read it \(mode 0400; this process runs as uid 0\)$/],
    ['0440, another user\'s, read through our group', { mode: 0o440, uid: 1001 }, ME, /^belongs to uid 1001, who can read it/],
    ['0040, another user\'s who may not read it', { mode: 0o040, uid: 1001 }, ME, undefined],
    ['0600, another user\'s, where there are no uids', { mode: 0o600, uid: 1001 }, undefined, undefined],
  ]
  for (const [name, file, self, expected] of cases) {
    const said = otherReaders(file, self)
    if (expected) t.match(said, expected, name)
    else t.equal(said, undefined, name)
  }
})

t.test('the warning names the file and how to fix it; inline keys and unknown modes are not judged', async (t) => {
  const file = { kind: 'file' as const, path: '/home/me/client.key', label: '--key' }
  t.equal(permissionWarning(file, { mode: 0o644, uid: ME }, ME),
    '--key /home/me/client.key is readable by every user of this machine (mode 0644): anyone who reads it can act as you; ' +
    'run: chmod 600 /home/me/client.key (in a Kubernetes Secret volume: defaultMode: 0400)')
  t.equal(permissionWarning(file, { mode: 0o400, uid: 1001 }, ME),
    '--key /home/me/client.key belongs to uid 1001, who can read it (mode 0400; this process runs as uid 1000): anyone who reads it can act as you; ' +
    'keep the key in a file of your own, mode 0600')
  t.equal(permissionWarning(file, { mode: 0o440, uid: ROOT }, ME), undefined)
  t.equal(permissionWarning({ kind: 'inline', pem: '…', label: 'MTLS_PROXY_KEY_DATA' }, undefined, ME), undefined)
  t.equal(permissionWarning(file, undefined, ME), undefined)
})
