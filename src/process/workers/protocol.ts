// What the --workers primary and its workers say to each other: the variables a worker starts with
// and the messages on node:cluster's channel. Both sides read this file; neither reads the other's.
import type { Worker } from 'node:cluster'
import type { Registry } from 'prom-client'
import type { Settings } from '../../settings/types.js'
import type { Pins } from '../../clusters/pins.js'

// From the primary to a worker, deleted once read (nothing the worker starts inherits them), as is
// process/child-environment.ts's WORKER_ROLE_ENV with the worker's role (cli.ts reads that one before any settings).
export const SETTINGS_ENV = '_MTLS_PROXY_SETTINGS'

/** What the primary read at start, as a worker gets it in SETTINGS_ENV. */
export interface Given {
  settings: Settings
  warnings: string[]
  /** each cluster's context and server, as the primary found them at start */
  pins: Pins
}

/** A worker's role: the voice or a quiet one, and how many workers serve. */
export interface Role {
  voice: boolean
  of: number
}

/** WORKER_ROLE_ENV's value for a worker of this role. */
export const roleValue = (role: Role): string => `${role.voice ? 'voice' : 'quiet'},${role.of}`

/** The role in WORKER_ROLE_ENV; undefined when it holds none (set by something else). */
export function parseRole (value: string | undefined): Role | undefined {
  const role = /^(voice|quiet),(\d+)$/.exec(value ?? '')
  return role ? { voice: role[1] === 'voice', of: Number(role[2]) } : undefined
}

export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>

export type Message =
  | { type: 'mtls-proxy:ready' }
  | { type: 'mtls-proxy:stop' }
  | { type: 'mtls-proxy:reload' }
  /** primary → worker: speak for the proxy from now on (the voice died) */
  | { type: 'mtls-proxy:voice' }
  /** worker → primary: a scrape wants every worker's metrics */
  | { type: 'mtls-proxy:metrics'; id: number }
  | { type: 'mtls-proxy:metrics-answer'; id: number; text?: string; error?: string }
  /** primary → worker: this worker's own metrics, please */
  | { type: 'mtls-proxy:own-metrics'; id: number }
  | { type: 'mtls-proxy:own-metrics-answer'; id: number; metrics: MetricsJson }

export const isMessage = (m: unknown): m is Message => typeof (m as Message | undefined)?.type === 'string'

/** To a worker that may be dying: its channel may be closed before its exit is seen, and that is no error here. */
export function tell (worker: Worker, m: Message): void {
  if (worker.isConnected()) worker.send(m, () => {})
}
