// A worker's side of --workers: what the primary gave it at start, its role (one worker is the voice
// that logs what concerns the whole proxy), and the primary's messages turned into calls serve.ts makes.
import cluster, { type Worker } from 'node:cluster'
import type { Registry } from 'prom-client'
import { WORKER_ROLE_ENV } from '../child-environment.js'
import type { Settings } from '../../settings/types.js'
import type { Pins } from '../../clusters/pins.js'
import { isMessage, parseRole, SETTINGS_ENV, type Given, type Message, type Role } from './protocol.js'

/** What a worker knows of its place among the others. */
export interface WorkerLink {
  id: number
  /** how many workers serve */
  of: number
  /** what the primary read at start */
  settings: Settings
  warnings: string[]
  /** each cluster's context and server, as the primary found them at start */
  pins: Pins
  /** this worker logs for the whole proxy (it may become so later: onVoice) */
  voice: boolean
  onVoice(become: () => void): void
  /** serving: the primary may start the next worker */
  ready(): void
  /** the primary asks this worker to stop (or is gone); a stop asked earlier is passed on at once */
  onStop(stop: () => void): void
  /** SIGHUP reached the primary */
  onReload(reload: () => void): void
  /** this worker's registry, for the primary to sum */
  shareMetrics(registry: Registry): void
  /** every worker's metrics, summed by the primary */
  metrics(): Promise<string>
}

// A scrape waits this long for the primary, which itself gives the workers 5 s.
const METRICS_TIMEOUT_MS = 8_000

/** Run as a worker of another cluster (pm2's, say): serve as one plain process. */
export const underOtherCluster = (): boolean => cluster.isWorker

/** The link to the primary, in a worker this proxy's primary started; undefined anywhere else. */
export function workerLink (): WorkerLink | undefined {
  const self = cluster.worker
  const role = parseRole(process.env[WORKER_ROLE_ENV])
  if (!cluster.isWorker || !self || !role) return undefined
  const given = JSON.parse(process.env[SETTINGS_ENV] ?? '{}') as Given
  delete process.env[WORKER_ROLE_ENV]
  delete process.env[SETTINGS_ENV]
  return new PrimaryLink(self, role, given)
}

/** The primary as a worker hears it. Members are arrow functions: serve.ts hands some on unbound. */
class PrimaryLink implements WorkerLink {
  readonly id: number
  readonly of: number
  readonly settings: Settings
  readonly warnings: string[]
  readonly pins: Pins
  #voice: boolean
  #stopAsked = false
  #stop: (() => void) | undefined
  #reload = () => {}
  #becomeVoice = () => {}
  #shared: Registry | undefined
  #nextId = 0
  readonly #pending = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void }>()

  constructor (self: Worker, role: Role, given: Given) {
    this.id = self.id
    this.of = role.of
    this.#voice = role.voice
    this.settings = given.settings
    this.warnings = given.warnings
    this.pins = given.pins
    // Ctrl-C and a hang-up reach the whole process group; the primary decides (SIGINT stops, SIGHUP
    // reloads) and tells each worker once. Without a listener either would end the worker at once.
    process.on('SIGINT', () => {})
    process.on('SIGHUP', () => {})
    process.on('message', (m: unknown) => { if (isMessage(m)) this.#heard(m) })
    // The primary is gone (killed outright): finish what is in flight and stop. Node's own handler,
    // which runs next, would otherwise exit at once; it leaves alone a worker marked as leaving.
    self.on('disconnect', () => {
      self.exitedAfterDisconnect = true
      this.#stopNow()
    })
  }

  get voice (): boolean { return this.#voice }
  readonly onVoice = (become: () => void): void => { this.#becomeVoice = become }
  readonly ready = (): void => this.#send({ type: 'mtls-proxy:ready' })
  readonly onReload = (reload: () => void): void => { this.#reload = reload }
  readonly shareMetrics = (registry: Registry): void => { this.#shared = registry }

  readonly onStop = (stop: () => void): void => {
    this.#stop = stop
    if (this.#stopAsked) stop()
  }

  readonly metrics = (): Promise<string> => {
    const id = this.#nextId++
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new Error(`the primary gave no metrics within ${METRICS_TIMEOUT_MS / 1000} s`))
      }, METRICS_TIMEOUT_MS)
      this.#pending.set(id, {
        resolve: (text) => { clearTimeout(timer); resolve(text) },
        reject: (err) => { clearTimeout(timer); reject(err) },
      })
      this.#send({ type: 'mtls-proxy:metrics', id })
    })
  }

  #heard (m: Message): void {
    if (m.type === 'mtls-proxy:stop') this.#stopNow()
    if (m.type === 'mtls-proxy:reload') this.#reload()
    if (m.type === 'mtls-proxy:voice' && !this.#voice) {
      this.#voice = true
      this.#becomeVoice()
    }
    if (m.type === 'mtls-proxy:own-metrics' && this.#shared) {
      void this.#shared.getMetricsAsJSON().then((metrics) => this.#send({ type: 'mtls-proxy:own-metrics-answer', id: m.id, metrics }))
    }
    if (m.type === 'mtls-proxy:metrics-answer') this.#gathered(m)
  }

  /** The primary's answer to metrics(): the sum, or why there is none. */
  #gathered (m: Extract<Message, { type: 'mtls-proxy:metrics-answer' }>): void {
    const waiter = this.#pending.get(m.id)
    this.#pending.delete(m.id)
    if (m.text !== undefined) waiter?.resolve(m.text)
    else waiter?.reject(new Error(`the primary could not gather the workers' metrics: ${m.error ?? 'no answer'}`))
  }

  #stopNow (): void {
    this.#stopAsked = true
    this.#stop?.()
  }

  #send (m: Message): void {
    if (process.connected) process.send?.(m)
  }
}
