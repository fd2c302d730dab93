import { pino, type DestinationStream, type Logger } from 'pino'
import type { LogLevel } from './config.js'

// Belt and braces: nothing logs these today, and nothing ever should.
export const REDACTED_PATHS = [
  'headers.authorization', 'headers["proxy-authorization"]', 'headers.cookie',
  'req.headers.authorization', 'req.headers["proxy-authorization"]', 'req.headers.cookie',
  'keyPem', 'certPem', 'caPem', '*.keyPem', '*.certPem', '*.caPem', 'token', '*.token',
]

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
  return destination ? pino(options, destination) : pino(options)
}
