import type { FastifyBaseLogger } from 'fastify'
import { pino, type DestinationStream, type Logger } from 'pino'
import type { LogLevel } from '../settings/types.js'

// Belt and braces: nothing logs these today, and nothing ever should.
const REDACTED_PATHS = [
  'headers.authorization', 'headers["proxy-authorization"]', 'headers.cookie',
  'req.headers.authorization', 'req.headers["proxy-authorization"]', 'req.headers.cookie',
  'keyPem', 'certPem', 'caPem', '*.keyPem', '*.certPem', '*.caPem', 'token', '*.token',
  'bearerToken', '*.bearerToken', 'pem', '*.pem', '*.*.pem', '*.*.token', 'password', '*.password',
]

// Log lines are written behind the requests, not during them: a write per access line cost more
// than the rest of the request (BENCHMARKS.md). Lines gather until 4 KiB or 200 ms, then go out
// in one write off the main thread, so a line is seen within 200 ms and a busy proxy makes one
// write per ~15 requests. A consumer that stops reading (a full pipe) costs lines past 16 MiB,
// never a stalled proxy. Pending lines are flushed on exit.
const LOG_BATCH_BYTES = 4096
const LOG_FLUSH_MS = 200
const MAX_BUFFERED_LOG_BYTES = 16 * 1024 * 1024
// A pipe takes a write of up to PIPE_BUF (4 KiB on Linux) whole, never interleaved with another
// process's: the largest write when several workers share one stdout.
const PIPE_BUF = 4096

// A terminal's lines, readable in 100 columns: an access line as `request GET /api/v1/pods 200 14.5 ms`,
// and no field the message already says (the certificate's every detail, the serving line's URLs, a
// reason) repeated after it as JSON; what only a field says (err, cluster, aborted…) still follows.
// Without a terminal every field is written, as JSON.
export const PRETTY = {
  translateTime: 'SYS:HH:MM:ss.l',
  singleLine: true,
  messageFormat: '{msg}{if method} {method}{end}{if url} {url}{end}{if status} {status}{end}{if ms} {ms} ms{end}',
  ignore: 'pid,hostname,name,reqId,method,url,status,ms,bytesIn,bytesOut,certificate,listen,upstream,identity,certificateNotAfter,credentialsExpire,reason',
}

export interface LoggerOptions {
  level: LogLevel
  /** human-readable lines, for a terminal */
  pretty: boolean
  destination?: DestinationStream
  /** other processes write to the same stdout (--workers): every write holds whole lines and fits a pipe's atomic write */
  atomicWrites?: boolean
  /** 1: stdout (the default); 2: stderr, when stdout belongs to a command run with the proxy */
  fd?: 1 | 2
}

/**
 * The logger Fastify gets: ours, at warn or above. Its own info lines ("Server listening at …")
 * would repeat the proxy's; everything it has to say that matters is a warning or an error.
 */
export function quieter (logger: Logger): FastifyBaseLogger {
  const child = logger.child({})
  if (logger.levelVal < logger.levels.values.warn!) child.level = 'warn'
  return child
}

type ChildOptions = Parameters<FastifyBaseLogger['child']>[1]

/**
 * Fastify's logger for one request, made only when something logs through it. Fastify would make a
 * pino child per request (its binding run through redaction): ~1.5 µs of every request, for a logger
 * almost no request uses (BENCHMARKS.md). Lines, when there are any, carry the reqId as before.
 */
class RequestLogger {
  readonly #parent: FastifyBaseLogger
  readonly #bindings: Record<string, unknown>
  readonly #options: ChildOptions
  #made: FastifyBaseLogger | undefined

  constructor (parent: FastifyBaseLogger, bindings: Record<string, unknown>, options: ChildOptions) {
    this.#parent = parent
    this.#bindings = bindings
    this.#options = options
  }

  get #logger (): FastifyBaseLogger {
    return (this.#made ??= this.#parent.child(this.#bindings, this.#options))
  }

  get level (): string { return this.#made?.level ?? this.#options?.level ?? this.#parent.level }
  set level (level: string) { this.#logger.level = level }
  fatal (...args: unknown[]): void { Reflect.apply(this.#logger.fatal, this.#logger, args) }
  error (...args: unknown[]): void { Reflect.apply(this.#logger.error, this.#logger, args) }
  warn (...args: unknown[]): void { Reflect.apply(this.#logger.warn, this.#logger, args) }
  info (...args: unknown[]): void { Reflect.apply(this.#logger.info, this.#logger, args) }
  debug (...args: unknown[]): void { Reflect.apply(this.#logger.debug, this.#logger, args) }
  trace (...args: unknown[]): void { Reflect.apply(this.#logger.trace, this.#logger, args) }
  silent (): void {}
  child (bindings: Record<string, unknown>, options?: ChildOptions): FastifyBaseLogger { return this.#logger.child(bindings, options) }
}

/** Fastify's `childLoggerFactory`: a request's logger, made on first use. */
export function requestLogger (logger: FastifyBaseLogger, bindings: Record<string, unknown>, options: object): FastifyBaseLogger {
  return new RequestLogger(logger, bindings, options)
}

export function createLogger ({ level, pretty, destination, atomicWrites = false, fd = 1 }: LoggerOptions): Logger {
  const options = { level, base: { name: 'mtls-proxy' }, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }
  if (pretty && !destination) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { ...PRETTY, destination: fd } } })
  }
  return pino(options, destination ?? pino.destination({
    dest: fd,
    sync: false,
    periodicFlush: LOG_FLUSH_MS,
    maxLength: MAX_BUFFERED_LOG_BYTES,
    ...(atomicWrites ? { minLength: PIPE_BUF - 512, maxWrite: PIPE_BUF } : { minLength: LOG_BATCH_BYTES }),
  }))
}
