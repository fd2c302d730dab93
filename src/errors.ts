/**
 * A mistake the user can fix: a bad flag, an unreadable or mismatched certificate, a busy port.
 * The CLI prints its message as one line on stderr and exits with code 2, never a stack trace.
 */
export class UsageError extends Error {
  override name = 'UsageError'
}

/** A parser's message as one line: its first, without the colon that introduced a quoted excerpt. */
export function firstLine (err: unknown): string {
  return ((err as Error).message.split('\n')[0] ?? '').replace(/:\s*$/, '')
}
