// Every cluster the settings name, the default first: the default's credentials (flags, variables,
// the kubeconfig's current context at start), every other context of the kubeconfig (--all-contexts),
// and a config file's `clusters:`. Each becomes a definition, with its context and server as they were
// at start (pins.ts): its credentials are bound to that server when its store opens. Nothing is read here.
import type { Logger } from 'pino'
import type { ClusterDefinition } from './cluster.js'
import type { Config } from '../settings/types.js'
import { readKubeconfig } from '../credentials/kubeconfig.js'
import { contextSpec, pinnedSpec, type ClusterPin, type Pins } from './pins.js'
import { sourceOf, type CredentialSpec } from '../credentials/source.js'
import { openCredentialStore } from '../credentials/store.js'

interface DefinitionDeps {
  logger: Logger
  /** the clock the stores read; tests move it */
  now?: () => Date
}

function definition (
  name: string, spec: CredentialSpec, pin: ClusterPin | undefined, { logger, now }: DefinitionDeps, isDefault = false
): ClusterDefinition {
  return {
    name,
    isDefault,
    logger,
    inspect: async () => {
      // A kubeconfig user's exec plugin runs on first use; the rest of its entry is checked now.
      if (isDefault || !spec.kubeconfig || spec.cert) return { lazy: false }
      return { lazy: (await readKubeconfig(spec.kubeconfig)).exec !== undefined }
    },
    source: () => sourceOf(spec, { logger }),
    open: (source) => openCredentialStore(source, { logger, now, ...(pin?.server ? { bound: pin.server } : {}) }),
  }
}

/**
 * The clusters served, the default first, then the others in the order the settings list them.
 * The default cluster speaks with `deps.logger`, another with a child naming it.
 */
export function clusterDefinitions (config: Config, pins: Pins, deps: DefinitionDeps): ClusterDefinition[] {
  const spec = config.credentials
  const other = (name: string, credentials: CredentialSpec) =>
    definition(name, credentials, pins.clusters[name], { ...deps, logger: deps.logger.child({ cluster: name }) })
  return [
    definition(pins.name, pinnedSpec(spec, pins.clusters[pins.name]), pins.clusters[pins.name], deps, true),
    ...pins.contexts.map((context) => other(context, contextSpec(spec, context))),
    ...config.clusters.map(({ name, credentials }) => other(name, pinnedSpec(credentials, pins.clusters[name]))),
  ]
}
