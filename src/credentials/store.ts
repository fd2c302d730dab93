// The one owner of the credentials in use. It is opened by the same load as every later reload
// (ghostunnel's certloader: the first load is a reload), holds the current bundle, and tells its
// readers when a new one is in use. A load reads and validates a whole new bundle; only a good one
// is swapped in, with one assignment, and a bad one leaves the old one serving. File changes are
// seen by watching the folders, which also catches renames and the `..data` symlink swap
// Kubernetes uses to update Secret volumes.
import { watch, type FSWatcher } from 'node:fs'
import { dirname } from 'node:path'
import type { Logger } from 'pino'
import { clientIdentity, sameBundle, sameClient, sameServer, subjectOf, type CredentialBundle } from './bundle.js'
import type { CredentialSource } from './source.js'

export interface ReloadOutcome {
  at: string
  trigger: string
  outcome: 'reloaded' | 'unchanged' | 'failed'
  error?: string
}

export interface StoreOptions {
  logger: Logger
  now?: () => Date
}

// Writers often replace cert and key a few milliseconds apart: wait for quiet, then retry a
// pair that does not match yet before calling the new files broken.
const DEBOUNCE_MS = 100
const MISMATCH_RETRIES = 5
const RETRY_DELAY_MS = 200

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Opens a store: the first load, whose failure (a UsageError naming the file) stops the start.
 * Its warnings are logged as every later load's are.
 */
export async function openCredentialStore (source: CredentialSource, options: StoreOptions): Promise<CredentialStore> {
  const now = options.now ?? (() => new Date())
  const first = await source.load(now())
  for (const warning of first.warnings) options.logger.warn(warning)
  return new CredentialStore(source, first, options.logger, now)
}

type Listener = (bundle: CredentialBundle, previous: CredentialBundle) => void

export class CredentialStore {
  #current: CredentialBundle
  #last: ReloadOutcome | undefined
  readonly #source: CredentialSource
  readonly #logger: Logger
  readonly #now: () => Date
  readonly #onChange: Listener[] = []
  readonly #onOutcome: Array<(outcome: ReloadOutcome) => void> = []
  #watchers: FSWatcher[] = []
  #timer: NodeJS.Timeout | undefined
  #running: Promise<ReloadOutcome> | undefined
  #again = false
  #closed = false

  constructor (source: CredentialSource, first: CredentialBundle, logger: Logger, now: () => Date) {
    this.#source = source
    this.#current = first
    this.#logger = logger
    this.#now = now
  }

  get current (): CredentialBundle {
    return this.#current
  }

  get lastReload (): ReloadOutcome | undefined {
    return this.#last
  }

  /** Called with each new bundle, once it is the current one. */
  onChange (listener: Listener): void {
    this.#onChange.push(listener)
  }

  /** Told of every reload, whatever came of it. */
  onOutcome (listener: (outcome: ReloadOutcome) => void): void {
    this.#onOutcome.push(listener)
  }

  /** Loads again now; concurrent calls share one run (and one more run follows if asked meanwhile). */
  reload (trigger: string): Promise<ReloadOutcome> {
    if (this.#running) {
      this.#again = true
      return this.#running
    }
    this.#running = this.#reload(trigger).finally(() => {
      this.#running = undefined
      if (this.#again && !this.#closed) {
        this.#again = false
        void this.reload(trigger)
      }
    })
    return this.#running
  }

  async #reload (trigger: string): Promise<ReloadOutcome> {
    let bundle: CredentialBundle | undefined
    let error = ''
    for (let attempt = 0; attempt <= MISMATCH_RETRIES && !bundle && !this.#closed; attempt++) {
      if (attempt > 0) await sleep(RETRY_DELAY_MS)
      try {
        bundle = await this.#source.load(this.#now())
      } catch (err) {
        error = (err as Error).message
      }
    }
    const at = this.#now().toISOString()
    // Closed meanwhile: the readers this bundle was for are gone.
    if (this.#closed) return { at, trigger, outcome: 'unchanged' }
    let outcome: ReloadOutcome
    if (!bundle) {
      outcome = { at, trigger, outcome: 'failed', error }
      this.#logger.error({ trigger, error }, `certificate reload failed, still serving as ${clientIdentity(this.#current)}: ${error}`)
    } else if (sameBundle(bundle, this.#current)) {
      outcome = { at, trigger, outcome: 'unchanged' }
      // Asked for (SIGHUP): an answer is owed. Seen in a folder: usually another file's change.
      const level = trigger === 'file change' ? 'debug' : 'info'
      this.#logger[level]({ trigger }, `certificate files unchanged: still serving as ${clientIdentity(this.#current)}`)
    } else {
      const previous = this.#current
      this.#current = bundle
      for (const listener of this.#onChange) listener(bundle, previous)
      outcome = { at, trigger, outcome: 'reloaded' }
      this.#logChange(trigger, bundle, previous)
    }
    // 'unchanged' after a real reload should not hide the last one that mattered.
    if (outcome.outcome !== 'unchanged' || !this.#last) this.#last = outcome
    for (const listener of this.#onOutcome) listener(outcome)
    return outcome
  }

  #logChange (trigger: string, bundle: CredentialBundle, previous: CredentialBundle): void {
    const logger = this.#logger
    if (!sameClient(bundle, previous)) {
      const identity = clientIdentity(bundle)
      logger.info({ trigger, identity, previous: clientIdentity(previous), notAfter: bundle.notAfter.toISOString() },
        `certificates reloaded: new requests go out as ${identity} (serial ${bundle.clientCertificate.serialNumber})`)
    }
    if (bundle.listener && bundle.listener.certPem !== previous.listener?.certPem) {
      const { certificate } = bundle.listener
      logger.info({ trigger, listener: subjectOf(certificate), notAfter: new Date(certificate.validTo).toISOString() },
        `the listener's certificate reloaded: new connections are served ${subjectOf(certificate)} (serial ${certificate.serialNumber})`)
    }
    if (!sameServer(bundle, previous)) {
      // The pool, its name check and the tunnels were made for the first server; following another is a restart.
      const named = ({ server }: CredentialBundle) =>
        server.url.origin + (server.tlsServerName ? ` (certificate name ${server.tlsServerName})` : '')
      logger.warn({ trigger, server: bundle.server.url.href },
        `the kubeconfig now names server ${named(bundle)}; requests still go to ${named(previous)} until mtls-proxy is restarted`)
    }
    for (const warning of bundle.warnings) logger.warn(warning)
  }

  /** Watches the folders of every file the current bundle was read from. */
  watch (): void {
    const folders = new Set(this.#current.sources.watch.map((f) => dirname(f)))
    for (const folder of folders) {
      try {
        const watcher = watch(folder, { persistent: false }, () => this.#schedule())
        watcher.on('error', (err) => this.#logger.warn({ folder, err: err.message }, 'stopped watching a certificate folder'))
        this.#watchers.push(watcher)
      } catch (err) {
        this.#logger.warn({ folder, err: (err as Error).message }, 'cannot watch certificate folder; reload with SIGHUP')
      }
    }
  }

  #schedule (): void {
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => { void this.reload('file change') }, DEBOUNCE_MS)
    this.#timer.unref()
  }

  /** Stops watching. A load still reading is not waited for: no credential source may hold up shutdown. */
  close (): void {
    this.#closed = true
    clearTimeout(this.#timer)
    for (const w of this.#watchers) w.close()
    this.#watchers = []
  }
}
