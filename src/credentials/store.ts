// The one owner of the credentials in use. It is opened by the same load as every later reload
// (ghostunnel's certloader: the first load is a reload), holds the current bundle, and tells its
// readers when a new one is in use. A load reads and validates a whole new bundle; only a good one
// is swapped in, with one assignment, and a bad one leaves the old one serving. The source says when
// its credentials may have changed (a file source watches their folders, which also catches renames
// and the `..data` symlink swap Kubernetes uses to update Secret volumes); the store loads again.
import type { Logger } from 'pino'
import { UsageError } from '../util/errors.js'
import { bindingOf, describeBinding, sameBinding, type ServerBinding } from './binding.js'
import { clientIdentity, sameBundle, sameClient, type CredentialBundle } from './bundle.js'
import { subjectOf } from './pem.js'
import { reloadedOf } from './wording.js'
import { PluginError } from './exec.js'
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
  /** the server these credentials are for, as it was when the proxy started; default: the first load's */
  bound?: ServerBinding
}

// Writers often replace cert and key a few milliseconds apart: a pair that does not match yet is
// tried again before the new files are called broken.
const MISMATCH_RETRIES = 5
const RETRY_DELAY_MS = 200

// After the upstream refuses a plugin's credential, the plugin runs again at most this often; a
// failed renewal is tried again this often.
const RENEW_MIN_INTERVAL_MS = 10_000
// Node's timers hold at most 2^31-1 ms.
const MAX_TIMER_MS = 2 ** 31 - 1

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Opens a store: the first load, whose failure (a UsageError naming the file) stops the start.
 * Its warnings are logged as every later load's are.
 */
export async function openCredentialStore (source: CredentialSource, options: StoreOptions): Promise<CredentialStore> {
  const now = options.now ?? (() => new Date())
  const first = await source.load(now())
  const bound = options.bound ?? bindingOf(first.server)
  const moved = movedFrom(bound, first)
  if (moved) throw new UsageError(moved)
  for (const warning of first.warnings) options.logger.warn(warning)
  return new CredentialStore(source, first, bound, options.logger, now)
}

/** Why a bundle cannot be used by a store bound to `bound`: it names another server. Undefined: it is that server's. */
function movedFrom (bound: ServerBinding, bundle: CredentialBundle): string | undefined {
  const now = bindingOf(bundle.server)
  if (sameBinding(bound, now)) return undefined
  const context = bundle.sources.context === undefined ? '' : ` (context '${bundle.sources.context}')`
  return `the settings now name server ${describeBinding(now)}${context}, but these credentials are bound to ${describeBinding(bound)}, the server they were read for at start: refused; a restart follows the new server`
}

type Listener = (bundle: CredentialBundle, previous: CredentialBundle) => void

export class CredentialStore {
  #current: CredentialBundle
  /** the server every bundle must be for */
  readonly #bound: ServerBinding
  #last: ReloadOutcome | undefined
  readonly #source: CredentialSource
  readonly #logger: Logger
  readonly #now: () => Date
  readonly #onChange: Listener[] = []
  readonly #onOutcome: Array<(outcome: ReloadOutcome) => void> = []
  #unwatch: (() => void) | undefined
  #refreshTimer: NodeJS.Timeout | undefined
  #lastRenew = -Infinity
  #running: Promise<ReloadOutcome> | undefined
  #again = false
  #againRenew = false
  #closed = false

  constructor (source: CredentialSource, first: CredentialBundle, bound: ServerBinding, logger: Logger, now: () => Date) {
    this.#source = source
    this.#current = first
    this.#bound = bound
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

  /**
   * The upstream refused the credential in use (401): an exec plugin runs again, at most once per
   * 10 s. Other sources have nothing new to offer until their files change.
   */
  renew (trigger: string): Promise<ReloadOutcome> | undefined {
    if (!this.#source.renewable() || this.#closed) return undefined
    const now = Date.now()
    if (now - this.#lastRenew < RENEW_MIN_INTERVAL_MS) return undefined
    this.#lastRenew = now
    return this.reload(trigger, true)
  }

  /** Loads again now; concurrent calls share one run (and one more run follows if asked meanwhile). */
  reload (trigger: string, renew = false): Promise<ReloadOutcome> {
    if (this.#running) {
      this.#again = true
      // A renewal asked for meanwhile (a 401) must not become a plain reload.
      this.#againRenew ||= renew
      return this.#running
    }
    this.#running = this.#reload(trigger, renew).finally(() => {
      this.#running = undefined
      if (this.#again && !this.#closed) {
        const again = this.#againRenew
        this.#again = false
        this.#againRenew = false
        void this.reload(trigger, again)
      }
    })
    return this.#running
  }

  async #reload (trigger: string, renew: boolean): Promise<ReloadOutcome> {
    let bundle: CredentialBundle | undefined
    let error = ''
    for (let attempt = 0; attempt <= MISMATCH_RETRIES && !bundle && !this.#closed; attempt++) {
      if (attempt > 0) await sleep(RETRY_DELAY_MS)
      try {
        bundle = await this.#source.load(this.#now(), { renew })
      } catch (err) {
        error = (err as Error).message
        // A plugin that failed would fail again; files are retried, being often half-written.
        if (err instanceof PluginError) break
      }
    }
    // Another server's credentials, or these for another server: the whole bundle is refused.
    const moved = bundle && movedFrom(this.#bound, bundle)
    if (moved) {
      bundle = undefined
      error = moved
    }
    const at = this.#now().toISOString()
    // Closed meanwhile: the readers this bundle was for are gone.
    if (this.#closed) return { at, trigger, outcome: 'unchanged' }
    let outcome: ReloadOutcome
    if (!bundle) {
      outcome = { at, trigger, outcome: 'failed', error }
      const what = this.#current.clientCertificate ? 'certificate' : 'token'
      this.#logger.error({ trigger, error }, `${what} reload failed, still serving as ${clientIdentity(this.#current)}: ${error}`)
    } else if (sameBundle(bundle, this.#current)) {
      outcome = { at, trigger, outcome: 'unchanged' }
      // A plugin may hand out the credential it holds until that expires: the same, with a new time to ask again.
      if (bundle.refreshAt?.getTime() !== this.#current.refreshAt?.getTime()) this.#current = bundle
      // Asked for (SIGHUP): an answer is owed. Seen in a folder: usually another file's change.
      const level = trigger === 'file change' ? 'debug' : 'info'
      this.#logger[level]({ trigger }, `${reloadedOf(this.#current).unchanged}: still serving as ${clientIdentity(this.#current)}`)
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
    this.#scheduleRefresh()
    return outcome
  }

  /**
   * An exec plugin's credential is renewed when due; a failed renewal is tried again every 10 s,
   * the last good credential serving meanwhile.
   */
  #scheduleRefresh (): void {
    clearTimeout(this.#refreshTimer)
    const { refreshAt } = this.#current
    if (refreshAt === undefined || this.#closed) return
    const wait = refreshAt.getTime() - this.#now().getTime()
    // Overdue: now (a slow start may pass the time), or in 10 s after a failed renewal.
    const delay = wait > 0 ? wait : this.#last?.outcome === 'failed' ? RENEW_MIN_INTERVAL_MS : 0
    this.#refreshTimer = setTimeout(() => { void this.reload('credential renewal') }, Math.min(delay, MAX_TIMER_MS))
    this.#refreshTimer.unref()
  }

  #logChange (trigger: string, bundle: CredentialBundle, previous: CredentialBundle): void {
    const logger = this.#logger
    if (!sameClient(bundle, previous) || bundle.bearerToken !== previous.bearerToken) {
      const identity = clientIdentity(bundle)
      const what = sameClient(bundle, previous) ? 'token renewed' : 'certificates reloaded'
      const serial = bundle.clientCertificate ? ` (serial ${bundle.clientCertificate.serialNumber})` : ''
      logger.info({ trigger, identity, previous: clientIdentity(previous), expires: bundle.expiresAt?.toISOString() },
        `${what}: new requests go out as ${identity}${serial}`)
    }
    if (bundle.listener && bundle.listener.certPem !== previous.listener?.certPem) {
      const { certificate } = bundle.listener
      logger.info({ trigger, listener: subjectOf(certificate), notAfter: new Date(certificate.validTo).toISOString() },
        `the listener's certificate reloaded: new connections are served ${subjectOf(certificate)} (serial ${certificate.serialNumber})`)
    }
    for (const warning of bundle.warnings) logger.warn(warning)
  }

  /** Reloads whenever the source says its credentials changed, and starts renewing an exec plugin's credential when due. */
  watch (): void {
    this.#scheduleRefresh()
    this.#unwatch = this.#source.watch(this.#current, (trigger) => { void this.reload(trigger) }, this.#logger)
  }

  /**
   * Stops watching. A load still reading files is not waited for; an exec plugin still running is
   * ended, which takes at most a short grace period.
   */
  close (): Promise<void> {
    this.#closed = true
    clearTimeout(this.#refreshTimer)
    this.#unwatch?.()
    this.#unwatch = undefined
    return this.#source.close()
  }
}
