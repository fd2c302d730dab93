// What a process the proxy starts is given of its environment (src/process/child-environment.ts):
// never its secrets; the command of `-- COMMAND` also where the proxy is, and a kubectl cache of its own.
import t from 'tap'
import { childEnvironment, commandEnvironment, WORKER_ROLE_ENV } from '../../../src/process/child-environment.js'

const proxy = { url: 'https://127.0.0.1:40000', token: 'run-token' }
const FOLDER = '/run/private/mtls-proxy-x'

t.test('an exec plugin or the command: the proxy\'s environment without its secrets', async (t) => {
  const cases: Array<[string, NodeJS.ProcessEnv, NodeJS.ProcessEnv]> = [
    ['kept', { PATH: '/bin', HOME: '/home/u', MTLS_PROXY_PORT: '8001' }, { PATH: '/bin', HOME: '/home/u', MTLS_PROXY_PORT: '8001' }],
    ['secrets dropped', { MTLS_PROXY_KEY_DATA: 'k', MTLS_PROXY_CERT_DATA: 'c', MTLS_PROXY_CACERT_DATA: 'a', A: '1' }, { A: '1' }],
    ['the primary\'s private ones dropped', { [WORKER_ROLE_ENV]: '1', _MTLS_PROXY_ANY: 'x', A: '1' }, { A: '1' }],
  ]
  for (const [name, env, expected] of cases) t.same(childEnvironment(env), expected, name)
})

t.test('the command: the proxy, and a kubectl cache in the run\'s folder whatever the user set', async (t) => {
  const ours = {
    MTLS_PROXY_URL: proxy.url,
    MTLS_PROXY_TOKEN: 'run-token',
    MTLS_PROXY_CACERT: `${FOLDER}/ca.crt`,
    KUBECONFIG: `${FOLDER}/kubeconfig`,
    KUBECACHEDIR: `${FOLDER}/kubectl-cache`,
  }
  const cases: Array<[string, NodeJS.ProcessEnv, NodeJS.ProcessEnv]> = [
    ['nothing set', { HOME: '/home/u' }, { HOME: '/home/u', ...ours }],
    // Every run has a new port, and kubectl keeps a discovery folder per host and port: the user's cache would fill too.
    ['a KUBECACHEDIR the user set is replaced', { KUBECACHEDIR: '/home/u/cache' }, ours],
    ['as the user\'s KUBECONFIG is', { KUBECONFIG: '/home/u/.kube/config:/home/u/other' }, ours],
    ['and a token or URL of another proxy', { MTLS_PROXY_TOKEN: 'other', MTLS_PROXY_URL: 'http://x' }, ours],
    ['secrets dropped', { MTLS_PROXY_KEY_DATA: 'k' }, ours],
  ]
  for (const [name, env, expected] of cases) t.same(commandEnvironment(FOLDER, proxy, env), expected, name)
})
