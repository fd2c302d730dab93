/**
 * A mistake the user can fix: a bad flag, an unreadable or mismatched certificate, a busy port.
 * The CLI prints its message as one line on stderr and exits with code 2, never a stack trace.
 */
export class UsageError extends Error {
  override name = 'UsageError'
}
