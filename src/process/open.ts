// A proxy opened from its settings, ready to listen: what this start fixes (pins.ts), every cluster's
// definition, and the app built around them with the default cluster open and its first probe made.
// The CLI's serve() and the tests open a proxy through this one function.
import type { Logger } from 'pino'
import { buildApp, type App } from '../app.js'
import type { Config } from '../settings/types.js'
import { clusterDefinitions } from '../clusters/definitions.js'
import { pinClusters, type Pins } from '../clusters/pins.js'
import type { MetricsOptions } from '../ops/metrics.js'
import { StoppedWhileStarting } from '../util/errors.js'

export interface OpenDeps {
  logger: Logger
  /** for what concerns the whole proxy (see AppDeps); default: logger */
  events?: Logger
  /** what the start fixes, worked out already (a worker is handed the primary's); default: read now */
  pins?: Pins
  now?: () => Date
  metrics?: MetricsOptions
  /** aborted with a signal's name: a start under way ends, its exec plugin too, with StoppedWhileStarting */
  stopStarting?: AbortSignal
  startupCheck?: boolean
}

export async function openProxy (config: Config, deps: OpenDeps): Promise<App> {
  const events = deps.events ?? deps.logger
  const { stopStarting } = deps
  const stopped = () => new StoppedWhileStarting(stopStarting!.reason as NodeJS.Signals)
  const pins = deps.pins ?? await pinClusters(config)
  for (const warning of pins.warnings) events.warn(warning)
  if (stopStarting?.aborted) throw stopped()
  const clusters = clusterDefinitions(config, pins, { logger: events, now: deps.now })
  try {
    return await buildApp(config, { ...deps, events, clusters })
  } catch (err) {
    throw stopStarting?.aborted ? stopped() : err
  }
}
