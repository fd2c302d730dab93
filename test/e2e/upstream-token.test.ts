// The API server's bearer token given as such (kubectl's --token or a kubeconfig user's tokenFile),
// apart from --token-file, the token callers must send to the proxy, which a kubectl user is apt to
// take for it.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { pkiWithFiles } from '../helpers/pki.js'
import { runCli, startCli } from '../helpers/cli.js'
import { get } from '../helpers/http.js'
import { until } from '../helpers/until.js'
import { startTokenUpstream } from '../helpers/upstream.js'

const { pki, files } = await pkiWithFiles(t)
const tokenFile = join(files.dir, 'upstream.token')

/** A kubeconfig of one context: the server, verified with the test's CA, and a user holding `user`. */
async function oneUser (name: string, server: string, user: Record<string, string>): Promise<string> {
  const file = join(files.dir, name)
  await writeFile(file, JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster: { server, 'certificate-authority': files.cacert } }],
    users: [{ name: 'u', user }],
    contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
    'current-context': 'x',
  }))
  return file
}

t.test('--upstream-token-file: sent to the API server, followed when the file changes', async (t) => {
  const api = await startTokenUpstream(t, pki)
  await writeFile(tokenFile, 'first-upstream-token\n', { mode: 0o600 })
  const proxy = await startCli(t, ['--upstream', api.url, '--cacert', files.cacert, '--upstream-token-file', tokenFile])
  t.match((await get(`${proxy.url}/api`)).json(), { authorization: 'Bearer first-upstream-token', cn: undefined }, 'a token alone, no client certificate')
  t.ok(proxy.logs().some((l) => String(l.msg).includes(`as --upstream-token-file ${tokenFile}`)), 'the start line names where the token comes from')
  await writeFile(tokenFile, 'second-upstream-token\n')
  const POLL_MS = 5_000
  const took = await until(async () => (await get(`${proxy.url}/api`)).json().authorization === 'Bearer second-upstream-token', 3 * POLL_MS)
  t.ok(took < 2 * POLL_MS, `the new token in use after ${took} ms`)
  t.notMatch(JSON.stringify(proxy.logs()), /first-upstream|second-upstream/, 'no log line holds the token')
})

t.test('MTLS_PROXY_UPSTREAM_TOKEN_DATA: the token as text, never handed to a command', async (t) => {
  const api = await startTokenUpstream(t, pki)
  const env = { MTLS_PROXY_UPSTREAM_TOKEN_DATA: 'token-from-the-environment' }
  const proxy = await startCli(t, ['--upstream', api.url, '--cacert', files.cacert], env)
  t.equal((await get(`${proxy.url}/api`)).json().authorization, 'Bearer token-from-the-environment')
  const run = await runCli(['--upstream', api.url, '--cacert', files.cacert, '--', 'env'], env)
  t.equal(run.code, 0, run.stderr)
  t.notMatch(run.stdout, /token-from-the-environment|MTLS_PROXY_UPSTREAM_TOKEN_DATA/, 'the command sees neither the variable nor the token')
  const inArgv = await runCli(['--upstream', api.url, '--cacert', files.cacert, '--upstream-token-data', 'x'])
  t.match(inArgv, { code: 2, stderr: /MTLS_PROXY_UPSTREAM_TOKEN_DATA/ }, 'refused on the command line, where ps shows it to every local user')
})

t.test('the settings\' token beats the kubeconfig user\'s, as kubectl --token does', async (t) => {
  const api = await startTokenUpstream(t, pki)
  await writeFile(tokenFile, 'the-flag-token\n')
  const kubeconfig = await oneUser('token-user.yaml', api.url, { token: 'the-kubeconfig-token' })
  const proxy = await startCli(t, ['--kubeconfig', kubeconfig, '--upstream-token-file', tokenFile])
  t.equal((await get(`${proxy.url}/api`)).json().authorization, 'Bearer the-flag-token')
})

t.test('the settings\' token replaces the kubeconfig user\'s client certificate: the API server sees the token\'s identity alone', async (t) => {
  const api = await startTokenUpstream(t, pki)
  await writeFile(tokenFile, 'a-read-only-token\n')
  const kubeconfig = await oneUser('certificate-user.yaml', api.url, { 'client-certificate': files.cert, 'client-key': files.key })
  const withCertificate = await startCli(t, ['--kubeconfig', kubeconfig])
  t.equal((await get(`${withCertificate.url}/api`)).json().cn, 'demo-admin', 'without the token: the user\'s certificate')
  const proxy = await startCli(t, ['--kubeconfig', kubeconfig, '--upstream-token-file', tokenFile])
  t.match((await get(`${proxy.url}/api`)).json(), { cn: undefined, authorization: 'Bearer a-read-only-token' },
    'no certificate beside the token: the API server would have taken the certificate\'s identity (kubectl sends both)')
})

t.test('--token-file alone is not a credential for the API server, and the message says which is', async (t) => {
  const callers = join(files.dir, 'callers.token')
  await writeFile(callers, 'a-token-for-the-proxy-callers-0123456789\n', { mode: 0o600 })
  const exit = await runCli(['--upstream', 'https://127.0.0.1:1', '--cacert', files.cacert, '--token-file', callers])
  t.equal(exit.code, 2)
  t.equal(exit.stderr.trim().split('\n').length, 1, 'one line')
  t.match(exit.stderr, /--token-file is the token callers must send to mtls-proxy, never sent to the API server; give the API server's token with --upstream-token-file FILE/)
  const nothing = await runCli(['--upstream', 'https://127.0.0.1:1', '--cacert', files.cacert])
  t.match(nothing, { code: 2, stderr: /missing --cert .*; or, for a bearer token, --upstream-token-file FILE/ }, 'the missing credential names both kinds')
})
