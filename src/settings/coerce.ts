// A value as a source gave it (text from a flag or variable, YAML's types from a config file) → the setting's type.
import { parseDuration } from './durations.js'
import { UsageError } from '../util/errors.js'
import { wrongType, unknownSetting } from './mistakes.js'
import { SPECS } from './options.js'

export function coerce (name: string, value: unknown, where: string): string | number | boolean {
  const spec = SPECS.get(name)
  if (!spec) throw new UsageError(unknownSetting(where, undefined))
  if (spec.type === 'number') {
    const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN
    if (!Number.isFinite(n)) throw wrongType(where, spec, value)
    return n
  }
  if (spec.type === 'duration') {
    const seconds = typeof value === 'number' ? value : typeof value === 'string' ? signedDuration(value) : undefined
    if (seconds === undefined || !Number.isFinite(seconds)) throw wrongType(where, spec, value)
    return seconds
  }
  // YAML reads `workers: 4` as a number; the setting also takes `auto`.
  if (name === 'workers' && typeof value === 'number') return String(value)
  // eslint-disable-next-line valid-typeof -- spec.type is string or boolean here: a typeof name
  if (typeof value !== spec.type) throw wrongType(where, spec, value)
  return value as string | boolean
}

// `-1s` is a duration, if not one a setting takes: as `-1` in YAML, it is refused for its sign, not its form.
function signedDuration (text: string): number | undefined {
  const trimmed = text.trim()
  if (!trimmed.startsWith('-')) return parseDuration(trimmed)
  const seconds = parseDuration(trimmed.slice(1))
  return seconds !== undefined && seconds > 0 ? -seconds : undefined
}
