// The token callers must present (--token-file): an admission decision, so it is read and read again
// on its own, apart from the credentials toward the API server. A rotated token file takes effect
// whatever else fails to load (a kubeconfig typo, a failing exec plugin, a key mid-rotation), and a
// token file emptied, removed or unreadable fails closed: every caller is refused until it is fixed,
// with an error line, and /-/readyz says why. Only the token's SHA-256 is held.
import { createHash } from 'node:crypto'
import type { Logger } from 'pino'
import { UsageError } from '../util/errors.js'
import { watchFiles } from '../util/file-watch.js'
import { describeFsError, readRegularFile } from '../util/files.js'

// A token is one line.
const MAX_TOKEN_FILE_BYTES = 64 * 1024
// Shorter is guessable.
const MIN_TOKEN_LENGTH = 16

export const tokenDigest = (token: string): Buffer => createHash('sha256').update(token).digest()

/** Where the token comes from: the --token-file, or a token made for one run (`-- COMMAND`). */
export type CallerTokenSource = { path: string; label: string } | { token: string }

/**
 * What callers must present now: the token's digest (`run`: the token made for one command, given to
 * it as MTLS_PROXY_TOKEN), or nothing at all while its file is broken.
 */
export type CallerTokenState = { digest: Buffer; run?: true } | { broken: string }

/** The token in a file, checked; a mistake is a UsageError naming the file, never quoting it. */
async function readToken ({ path, label }: { path: string; label: string }): Promise<Buffer> {
  let token: string
  try {
    token = (await readRegularFile(path, MAX_TOKEN_FILE_BYTES)).text.trim()
  } catch (err) {
    throw new UsageError(`${label} ${path}: cannot read: ${describeFsError(err)}`)
  }
  if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) {
    throw new UsageError(`${label} ${path} must hold one token of at least ${MIN_TOKEN_LENGTH} characters without spaces (e.g. from: openssl rand -hex 32)`)
  }
  return tokenDigest(token)
}

export class CallerToken {
  #state: CallerTokenState
  readonly #source: CallerTokenSource
  readonly #logger: Logger
  #unwatch: (() => void) | undefined
  #reading: Promise<void> | undefined
  #again = false

  private constructor (source: CallerTokenSource, digest: Buffer, logger: Logger) {
    this.#source = source
    this.#state = 'token' in source ? { digest, run: true } : { digest }
    this.#logger = logger
  }

  /** The first read: a token file that cannot be used stops the start. */
  static async open (source: CallerTokenSource, logger: Logger): Promise<CallerToken> {
    const digest = 'token' in source ? tokenDigest(source.token) : await readToken(source)
    return new CallerToken(source, digest, logger)
  }

  get state (): CallerTokenState {
    return this.#state
  }

  /** Watches the file (its folder, and a poll every few seconds). */
  watch (): void {
    if ('token' in this.#source) return
    const files = { watch: [this.#source.path], poll: [this.#source.path] }
    this.#unwatch = watchFiles(files, () => { void this.reload('file change') }, this.#logger, 'the --token-file')
  }

  /** Reads the file again (a change seen, SIGHUP); runs at once, and once more if asked meanwhile. */
  reload (trigger: string): Promise<void> {
    if (this.#reading) {
      this.#again = true
      return this.#reading
    }
    this.#reading = this.#read(trigger).finally(() => {
      this.#reading = undefined
      if (this.#again) {
        this.#again = false
        void this.reload(trigger)
      }
    })
    return this.#reading
  }

  async #read (trigger: string): Promise<void> {
    if ('token' in this.#source) return
    let next: CallerTokenState
    try {
      next = { digest: await readToken(this.#source) }
    } catch (err) {
      next = { broken: (err as Error).message }
    }
    const before = this.#state
    this.#state = next
    if ('broken' in next) {
      if (!('broken' in before) || before.broken !== next.broken) {
        this.#logger.error({ trigger, reason: next.broken },
          `the token callers must present cannot be read: ${next.broken}; every caller is refused (401) until the file holds a token again`)
      }
    } else if ('broken' in before || !before.digest.equals(next.digest)) {
      this.#logger.info({ trigger }, `the token callers must present was ${'broken' in before ? 'read again' : 'replaced'} from ${this.#source.path}: only the token it holds now is accepted`)
    }
  }

  close (): void {
    this.#unwatch?.()
    this.#unwatch = undefined
  }
}
