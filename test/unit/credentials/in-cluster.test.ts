// In a pod: when the service account is served (as client-go's in-cluster config decides), the
// namespace kubectl would work in, and the account a token names. Files laid out by the test.
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { inClusterEnvironment, serviceAccountNamespace, serviceAccountOf, SERVICE_ACCOUNT_FOLDER_ENV } from '../../../src/credentials/in-cluster.js'
import { tempDir } from '../../helpers/temp.js'

const dir = await tempDir(t, 'in-cluster')
const folder = join(dir, 'serviceaccount')
await mkdir(folder)
await writeFile(join(folder, 'token'), 'a-token\n')
await mkdir(join(dir, 'token-is-a-folder', 'token'), { recursive: true })
const kubeconfig = join(dir, 'config')
await writeFile(kubeconfig, 'apiVersion: v1\nkind: Config\n')
const nowhere = [join(dir, 'no-such-config')]
const pod = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443', [SERVICE_ACCOUNT_FOLDER_ENV]: folder }

t.test('served where kubectl would serve it, and nowhere else', async (t) => {
  const rows: Array<[string, NodeJS.ProcessEnv, string[], string | undefined]> = [
    ['in a pod, no kubeconfig', pod, nowhere, 'https://10.96.0.1:443'],
    ['an IPv6 service address, bracketed', { ...pod, KUBERNETES_SERVICE_HOST: 'fd00::1' }, nowhere, 'https://[fd00::1]:443'],
    ['a kubeconfig exists: it wins, as with kubectl', pod, [kubeconfig], undefined],
    ['one of $KUBECONFIG\'s files exists', pod, [...nowhere, kubeconfig], undefined],
    ['no KUBERNETES_SERVICE_HOST', { ...pod, KUBERNETES_SERVICE_HOST: '' }, nowhere, undefined],
    ['no KUBERNETES_SERVICE_PORT', { ...pod, KUBERNETES_SERVICE_PORT: undefined }, nowhere, undefined],
    ['no token file (automountServiceAccountToken: false)', { ...pod, [SERVICE_ACCOUNT_FOLDER_ENV]: join(dir, 'none') }, nowhere, undefined],
    ['a folder where the token should be', { ...pod, [SERVICE_ACCOUNT_FOLDER_ENV]: join(dir, 'token-is-a-folder') }, nowhere, undefined],
  ]
  for (const [name, env, files, server] of rows) t.equal(inClusterEnvironment(env, files)?.server, server, name)
  t.same(inClusterEnvironment({ ...pod, POD_NAMESPACE: 'from-downward-api' }, nowhere)?.serviceAccount,
    { folder, podNamespace: 'from-downward-api' }, 'POD_NAMESPACE kept for the namespace')
})

t.test('the namespace: POD_NAMESPACE, else the folder\'s file, else default', async (t) => {
  const withFile = join(dir, 'with-namespace')
  await mkdir(withFile)
  await writeFile(join(withFile, 'namespace'), ' team-a\n')
  const empty = join(dir, 'empty-namespace')
  await mkdir(empty)
  await writeFile(join(empty, 'namespace'), '\n')
  t.equal(await serviceAccountNamespace({ folder: withFile, podNamespace: 'team-b' }), 'team-b')
  t.equal(await serviceAccountNamespace({ folder: withFile, podNamespace: undefined }), 'team-a', 'trimmed')
  t.equal(await serviceAccountNamespace({ folder: empty, podNamespace: undefined }), 'default', 'an empty file')
  t.equal(await serviceAccountNamespace({ folder: join(dir, 'none'), podNamespace: undefined }), 'default', 'no file')
})

const jwt = (claims: unknown) => ['{"alg":"RS256"}', JSON.stringify(claims), 'signature'].map((p, i) => i < 2 ? Buffer.from(p).toString('base64url') : p).join('.')

t.test('the account a token names, read for the log, never trusted', async (t) => {
  const rows: Array<[string, string, string | undefined]> = [
    ['a bound service account token', jwt({ sub: 'system:serviceaccount:team-a:viewer', exp: 1 }), 'system:serviceaccount:team-a:viewer'],
    ['an OIDC token names a user, not an account', jwt({ sub: 'CgNib2I', email: 'bob@example.com' }), undefined],
    ['a sub that is not a string', jwt({ sub: 42 }), undefined],
    ['a sub with spaces or control characters', jwt({ sub: 'system:serviceaccount:a:b\nforged' }), undefined],
    ['a static token', 'abcdef0123456789abcdef', undefined],
    ['a payload that is not JSON', 'a.bm90IGpzb24.c', undefined],
    ['an absurdly long token', jwt({ sub: 'system:serviceaccount:a:b', pad: 'x'.repeat(20_000) }), undefined],
  ]
  for (const [name, token, account] of rows) t.equal(serviceAccountOf(token), account, name)
})
