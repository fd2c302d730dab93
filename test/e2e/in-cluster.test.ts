// In a pod with no kubeconfig, as kubectl proxy starts there: the API server from
// KUBERNETES_SERVICE_HOST/PORT, the service account folder's CA and token, the token followed as the
// kubelet replaces it (an atomic swap of the folder's `..data` link), the namespace for a command.
// The folder and the variables are laid out by the test; the CLI runs as a user runs it.
import { mkdir, rename, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { pkiWithFiles, type Teardown } from '../helpers/pki.js'
import { runCli, startCli } from '../helpers/cli.js'
import { get } from '../helpers/http.js'
import { until } from '../helpers/until.js'
import { tempDir } from '../helpers/temp.js'
import { startTokenUpstream } from '../helpers/upstream.js'
import { SERVICE_ACCOUNT_FOLDER_ENV } from '../../src/credentials/in-cluster.js'

const { pki } = await pkiWithFiles(t)

const jwt = (sub: string, n: number) =>
  [{ alg: 'RS256' }, { sub, n }].map((p) => Buffer.from(JSON.stringify(p)).toString('base64url')).join('.') + '.sig'
const ACCOUNT = 'system:serviceaccount:team-a:viewer'

/** A service account folder as the kubelet writes one: each version in its own folder, `..data` swapped atomically. */
async function serviceAccountFolder (t: Teardown, namespace: string) {
  const folder = join(await tempDir(t, 'sa'), 'serviceaccount')
  await mkdir(folder)
  let version = 0
  const publish = async (token: string) => {
    const dir = `..${++version}`
    await mkdir(join(folder, dir))
    await writeFile(join(folder, dir, 'token'), token)
    await writeFile(join(folder, dir, 'ca.crt'), pki.ca.certPem)
    await writeFile(join(folder, dir, 'namespace'), namespace)
    await symlink(dir, join(folder, '..data_tmp'))
    await rename(join(folder, '..data_tmp'), join(folder, '..data'))
  }
  await publish(jwt(ACCOUNT, 1))
  for (const name of ['token', 'ca.crt', 'namespace']) await symlink(join('..data', name), join(folder, name))
  return { folder, publish }
}

async function pod (t: Teardown, port: number, namespace = 'team-a') {
  const sa = await serviceAccountFolder(t, namespace)
  const home = await tempDir(t, 'home')
  const env = { HOME: home, KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(port), [SERVICE_ACCOUNT_FOLDER_ENV]: sa.folder }
  return { ...sa, env, home }
}

t.test('no kubeconfig in a pod: the service account, its token followed within seconds', async (t) => {
  const api = await startTokenUpstream(t, pki)
  const { env, publish, folder } = await pod(t, api.port)
  const proxy = await startCli(t, [], env)
  const first = (await get(`${proxy.url}/api/v1/namespaces/team-a/pods`)).json()
  t.equal(first.authorization, `Bearer ${jwt(ACCOUNT, 1)}`, 'the folder\'s token, to https://KUBERNETES_SERVICE_HOST:PORT, verified with its ca.crt')
  t.equal(first.cn, undefined, 'no client certificate')
  const said = proxy.logs().map((l) => String(l.msg))
  t.ok(said.some((m) => m.startsWith(`no kubeconfig found, and in a pod (KUBERNETES_SERVICE_HOST is set): serving as the pod's service account (${folder})`)),
    'says at start why it serves as the service account')
  t.ok(said.some((m) => m.includes(`forwarding to ${api.url} as ${ACCOUNT} (the pod's service account token ${folder}/token)`)),
    'the start line names the account')

  await publish(jwt(ACCOUNT, 2))
  // The folder is watched and the token polled every POLL_MS (src/util/file-watch.ts): in use by the second poll at the latest.
  const POLL_MS = 5_000
  const took = await until(async () => (await get(`${proxy.url}/x`)).json().authorization === `Bearer ${jwt(ACCOUNT, 2)}`, 3 * POLL_MS)
  t.ok(took < 2 * POLL_MS, `the kubelet's new token in use after ${took} ms (client-go: up to a minute)`)
  const logText = JSON.stringify(proxy.logs())
  t.notOk(logText.includes(jwt(ACCOUNT, 1)) || logText.includes(jwt(ACCOUNT, 2)), 'no log line holds a token')
})

t.test('a kubeconfig, a server or a context given: no service account', async (t) => {
  const api = await startTokenUpstream(t, pki)
  const { env, home } = await pod(t, api.port)
  const picked = await runCli(['--context', 'prod'], env)
  t.equal(picked.code, 2)
  t.match(picked.stderr, /no kubeconfig found/, '--context picks from a kubeconfig, as kubectl --context in a pod does')
  await mkdir(join(home, '.kube'))
  await writeFile(join(home, '.kube', 'config'), 'apiVersion: v1\nkind: Config\nclusters: []\n')
  const withKubeconfig = await runCli([], env)
  t.equal(withKubeconfig.code, 2)
  t.notMatch(withKubeconfig.stderr + withKubeconfig.stdout, /service account/, 'a kubeconfig in ~/.kube/config is read instead, as kubectl reads it')
  const allContexts = await runCli(['--all-contexts'], { ...env, HOME: join(home, 'elsewhere') })
  t.match(allContexts, { code: 2, stderr: /--all-contexts serves every context of a kubeconfig, and none was found: in a pod, only the pod's own cluster is served/ })
})

t.test('a command run with the proxy works in the service account\'s namespace', async (t) => {
  const api = await startTokenUpstream(t, pki)
  const { env } = await pod(t, api.port, 'team-b')
  const run = await runCli(['--', process.execPath, '-e', 'process.stdout.write(require("fs").readFileSync(process.env.KUBECONFIG, "utf8"))'], env)
  t.equal(run.code, 0, run.stderr)
  t.match(run.stdout, /namespace: team-b|"namespace": "team-b"/, 'the generated context keeps the namespace file\'s')
  const downward = await runCli(['--', process.execPath, '-e', 'process.stdout.write(require("fs").readFileSync(process.env.KUBECONFIG, "utf8"))'], { ...env, POD_NAMESPACE: 'from-downward-api' })
  t.match(downward.stdout, /from-downward-api/, 'POD_NAMESPACE beats the file, as kubectl has it')
})
