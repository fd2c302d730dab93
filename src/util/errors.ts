import { constants } from 'node:os'

/**
 * A mistake the user can fix: a bad flag, an unreadable or mismatched certificate, a busy port.
 * The CLI prints its message as one line on stderr and exits with code 2, never a stack trace.
 */
export class UsageError extends Error {
  override name = 'UsageError'
}

/** The start ended because a stop was asked for while the credentials were first read: no mistake of the user's. */
export class StoppedWhileStarting extends Error {
  override name = 'StoppedWhileStarting'
  constructor (readonly signal: NodeJS.Signals) {
    super(`${signal}: stopped while starting`)
  }
}

/** The exit status a process ended by `signal` has, as a shell says it: 128+N. */
export const signalStatus = (signal: NodeJS.Signals): number => 128 + (constants.signals[signal] ?? 0)

/** A parser's message as one line: its first, without the colon that introduced a quoted excerpt. */
export function firstLine (err: unknown): string {
  return ((err as Error).message.split('\n')[0] ?? '').replace(/:\s*$/, '')
}
