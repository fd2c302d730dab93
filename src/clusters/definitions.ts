// Which clusters the settings name besides the default: every other context of the kubeconfig
// (--all-contexts), and a config file's `clusters:`. Each becomes a definition the app opens, with
// its context and server as they were at start (pins.ts); nothing is read here.
import type { Logger } from 'pino'
import type { ClusterDefinition } from './clusters.js'
import type { Config } from '../settings/config.js'
import { readKubeconfig } from '../credentials/kubeconfig.js'
import { contextSpec, pinnedSpec, type ClusterPin, type Pins } from './pins.js'
import { fileSetSource, type CredentialSpec } from '../credentials/source.js'
import { openCredentialStore } from '../credentials/store.js'

function definition (name: string, spec: CredentialSpec, pin: ClusterPin | undefined, logger: Logger): ClusterDefinition {
  const log = logger.child({ cluster: name })
  return {
    name,
    inspect: async () => {
      // A kubeconfig user's exec plugin runs on first use; the rest of its entry is checked now.
      if (!spec.kubeconfig || spec.cert) return { lazy: false }
      return { lazy: (await readKubeconfig(spec.kubeconfig)).exec !== undefined }
    },
    source: () => fileSetSource(spec, { logger: log }),
    open: (source) => openCredentialStore(source, { logger: log, ...(pin?.server ? { bound: pin.server } : {}) }),
  }
}

/** The clusters served besides the default, in the order the settings list them. */
export function clusterDefinitions (config: Config, pins: Pins, logger: Logger): ClusterDefinition[] {
  const spec = config.credentials
  return [
    ...pins.contexts.map((context) => definition(context, contextSpec(spec, context), pins.clusters[context], logger)),
    ...config.clusters.map(({ name, credentials }) =>
      definition(name, pinnedSpec(credentials, pins.clusters[name]), pins.clusters[name], logger)),
  ]
}
