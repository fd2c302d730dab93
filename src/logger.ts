import { pino, type DestinationStream, type Logger } from 'pino'
import type { LogLevel } from './config.js'

// Belt and braces: nothing logs these today, and nothing ever should.
export const REDACTED_PATHS = [
  'headers.authorization', 'headers["proxy-authorization"]', 'headers.cookie',
  'req.headers.authorization', 'req.headers["proxy-authorization"]', 'req.headers.cookie',
  'keyPem', 'certPem', 'caPem', '*.keyPem', '*.certPem', '*.caPem', 'token', '*.token',
]

// Log lines are written behind the request, not during it: a synchronous write per access line
// cost more than the rest of the request (see BENCHMARKS.md). Lines written in the same moment go
// out in one write; a consumer that stops reading (a full pipe) costs lines past this many bytes,
// never a stalled proxy. Pending lines are flushed on exit.
const MAX_BUFFERED_LOG_BYTES = 16 * 1024 * 1024

export interface LoggerOptions {
  level: LogLevel
  /** human-readable lines, for a terminal */
  pretty: boolean
  destination?: DestinationStream
}

export function createLogger({ level, pretty, destination }: LoggerOptions): Logger {
  const options = { level, base: { name: 'mtls-proxy' }, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }
  if (pretty && !destination) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name,reqId', singleLine: true } } })
  }
  return pino(options, destination ?? pino.destination({ dest: 1, sync: false, maxLength: MAX_BUFFERED_LOG_BYTES }))
}
