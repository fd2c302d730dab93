// What a process the proxy starts is given of the proxy's own environment.
import { join } from 'node:path'
import { SECRET_VARIABLES } from '../settings/options.js'

// Between the --workers primary and its workers only: the settings, key material included.
const PRIVATE_PREFIX = '_MTLS_PROXY_'
/** Set by the --workers primary on each worker it starts (process/workers.ts); deleted once read. */
export const WORKER_ROLE_ENV = `${PRIVATE_PREFIX}WORKER`

/**
 * The environment of a process the proxy starts (an exec plugin, the command of `-- COMMAND`): the
 * proxy's own without the variables that carry its secrets. A plugin of another cluster, or the
 * command, has no business with this cluster's key.
 */
export function childEnvironment (env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(env)) {
    if (!SECRET_VARIABLES.includes(name) && !name.startsWith(PRIVATE_PREFIX)) out[name] = value
  }
  return out
}

/**
 * The environment of the command of `-- COMMAND`: the proxy's own without its secrets, where the
 * proxy is and what lets it in (files in the run's private folder), and a kubectl cache of its own
 * there. kubectl keeps its discovery cache by server host and port, and every run has a new port: in
 * ~/.kube/cache, or in a KUBECACHEDIR the user set, each run would leave a folder never read again.
 * KUBECACHEDIR is kubectl's --cache-dir default (1.32 checked); a --cache-dir the command gives still wins.
 */
export function commandEnvironment (
  folder: string, proxy: { url: string; token: string }, env: NodeJS.ProcessEnv = process.env
): NodeJS.ProcessEnv {
  return {
    ...childEnvironment(env),
    MTLS_PROXY_URL: proxy.url,
    MTLS_PROXY_TOKEN: proxy.token,
    MTLS_PROXY_CACERT: join(folder, 'ca.crt'),
    KUBECONFIG: join(folder, 'kubeconfig'),
    KUBECACHEDIR: join(folder, 'kubectl-cache'),
  }
}
