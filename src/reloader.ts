// Picks up rotated certificates without a restart. Every reload reads and validates a whole new
// bundle with the same code as start-up and swaps it in only if it is good; the old one keeps
// serving otherwise. File changes are seen by watching the folders, which also catches renames
// and the `..data` symlink swap Kubernetes uses to update Secret volumes.
import { watch, type FSWatcher } from 'node:fs'
import { dirname } from 'node:path'
import type { Logger } from 'pino'
import type { Config } from './config.js'
import { loadCredentials, clientIdentity, sameClient, subjectOf, type CredentialBundle } from './credentials.js'

export interface ReloadOutcome {
  at: string
  trigger: string
  outcome: 'reloaded' | 'unchanged' | 'failed'
  error?: string
}

export interface ReloaderOptions {
  config: Config
  initial: CredentialBundle
  logger: Logger
  /** called with each new good bundle */
  onBundle: (bundle: CredentialBundle) => void
  /** told of every reload, whatever came of it */
  onOutcome?: (outcome: ReloadOutcome) => void
  now?: () => Date
}

// Writers often replace cert and key a few milliseconds apart: wait for quiet, then retry a
// pair that does not match yet before calling the new files broken.
const DEBOUNCE_MS = 100
const MISMATCH_RETRIES = 5
const RETRY_DELAY_MS = 200

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export class CertificateReloader {
  #current: CredentialBundle
  #last: ReloadOutcome | undefined
  readonly #opts: ReloaderOptions
  #watchers: FSWatcher[] = []
  #timer: NodeJS.Timeout | undefined
  #running: Promise<ReloadOutcome> | undefined
  #again = false
  #stopped = false

  constructor (opts: ReloaderOptions) {
    this.#opts = opts
    this.#current = opts.initial
  }

  get current (): CredentialBundle {
    return this.#current
  }

  get lastReload (): ReloadOutcome | undefined {
    return this.#last
  }

  /** Reloads now; concurrent calls share one run (and one more run follows if asked meanwhile). */
  reload (trigger: string): Promise<ReloadOutcome> {
    if (this.#running) {
      this.#again = true
      return this.#running
    }
    this.#running = this.#reload(trigger).finally(() => {
      this.#running = undefined
      if (this.#again && !this.#stopped) {
        this.#again = false
        void this.reload(trigger)
      }
    })
    return this.#running
  }

  async #reload (trigger: string): Promise<ReloadOutcome> {
    const { logger, onBundle, config } = this.#opts
    const now = this.#opts.now ?? (() => new Date())
    let bundle: CredentialBundle | undefined
    let error = ''
    for (let attempt = 0; attempt <= MISMATCH_RETRIES && !bundle && !this.#stopped; attempt++) {
      if (attempt > 0) await sleep(RETRY_DELAY_MS)
      try {
        bundle = await loadCredentials(await config.credentialSources(), now())
      } catch (err) {
        error = (err as Error).message
      }
    }
    let outcome: ReloadOutcome
    if (this.#stopped) {
      // Stopped meanwhile: the pool this bundle was for is gone.
      return { at: now().toISOString(), trigger, outcome: 'unchanged' }
    } else if (!bundle) {
      outcome = { at: now().toISOString(), trigger, outcome: 'failed', error }
      logger.error({ trigger, error }, `certificate reload failed, still serving as ${clientIdentity(this.#current)}: ${error}`)
    } else if (sameBundle(bundle, this.#current)) {
      outcome = { at: now().toISOString(), trigger, outcome: 'unchanged' }
      // Asked for (SIGHUP): an answer is owed. Seen in a folder: usually another file's change.
      logger[trigger === 'file change' ? 'debug' : 'info']({ trigger }, `certificate files unchanged: still serving as ${clientIdentity(this.#current)}`)
    } else {
      const before = this.#current
      this.#current = bundle
      onBundle(bundle)
      outcome = { at: now().toISOString(), trigger, outcome: 'reloaded' }
      if (!sameClient(bundle, before)) {
        const identity = clientIdentity(bundle)
        logger.info({ trigger, identity, previous: clientIdentity(before), notAfter: bundle.notAfter.toISOString() },
          `certificates reloaded: new requests go out as ${clientIdentity(bundle)} (serial ${bundle.clientCertificate.serialNumber})`)
      }
      if (bundle.listener && bundle.listener.certPem !== before.listener?.certPem) {
        const { certificate } = bundle.listener
        logger.info({ trigger, listener: subjectOf(certificate), notAfter: new Date(certificate.validTo).toISOString() },
          `the listener's certificate reloaded: new connections are served ${subjectOf(bundle.listener.certificate)} (serial ${bundle.listener.certificate.serialNumber})`)
      }
      for (const warning of bundle.warnings) logger.warn(warning)
    }
    // 'unchanged' after a real reload should not hide the last one that mattered.
    if (outcome.outcome !== 'unchanged' || !this.#last) this.#last = outcome
    this.#opts.onOutcome?.(outcome)
    return outcome
  }

  /** Watches the folders of every credential file (and the kubeconfig) for changes. */
  start (): void {
    // The sources the bundle in use was read from: no second read of a kubeconfig.
    const folders = new Set(this.#current.sources.watch.map((f) => dirname(f)))
    for (const folder of folders) {
      try {
        const watcher = watch(folder, { persistent: false }, () => this.#schedule())
        watcher.on('error', (err) => this.#opts.logger.warn({ folder, err: err.message }, 'stopped watching a certificate folder'))
        this.#watchers.push(watcher)
      } catch (err) {
        this.#opts.logger.warn({ folder, err: (err as Error).message }, 'cannot watch certificate folder; reload with SIGHUP')
      }
    }
  }

  #schedule (): void {
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => void this.reload('file change'), DEBOUNCE_MS)
    this.#timer.unref()
  }

  /** Stops watching. A reload still reading is not waited for: no credential source may hold up shutdown. */
  async stop (): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    for (const w of this.#watchers) w.close()
    this.#watchers = []
  }
}

function sameBundle (a: CredentialBundle, b: CredentialBundle): boolean {
  return sameClient(a, b) && a.listener?.certPem === b.listener?.certPem && a.listener?.keyPem === b.listener?.keyPem
}
