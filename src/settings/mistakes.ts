// One wording for a mistake in a setting, whichever source gave it: only where it was given differs
// (`--port`, `MTLS_PROXY_PORT`, `'port' (config file F)`), so a user who tries one source after
// another reads the same sentence, and a test can hold all three to it.
import { UsageError } from '../util/errors.js'
import type { OptionSpec, OptionType } from './options.js'

/** What a value of each type must be, as the user writes it. */
const EXPECTED: Record<OptionType, string> = {
  string: 'a string',
  number: 'a number',
  boolean: 'true or false',
  duration: 'a duration such as 30s, 500ms, 5m or 1h, or a number of seconds',
}

/** A value that is not what its setting takes, e.g. `--port must be a whole number from 0 to 65535, got '70000'`. */
export function mustBe (where: string, what: string, value: unknown, { secret = false } = {}): UsageError {
  return new UsageError(`${where} must be ${what}, got ${shown(value, secret)}`)
}

/** A value not of its setting's type (`abc` for a port). */
export function wrongType (where: string, spec: Pick<OptionSpec, 'type' | 'noFlag'>, value: unknown): UsageError {
  return mustBe(where, EXPECTED[spec.type], value, { secret: spec.noFlag === true })
}

/** A name that is no setting, with the nearest that is, spelt as its source spells names. */
export function unknownSetting (where: string, near: string | undefined): string {
  return `${where} is no setting of mtls-proxy${near ? `; did you mean ${near}?` : ''}`
}

// A secret's value is never repeated (it may be key material); YAML's lists and mappings are named, not dumped.
function shown (value: unknown, secret: boolean): string {
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object' && value !== null) return 'a mapping'
  return secret ? `a ${typeof value}` : `'${String(value)}'`
}
