// What a process the proxy starts is given of the proxy's own environment.
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
