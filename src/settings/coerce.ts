// A value as a source gave it (text from a flag or variable, YAML's types from a config file) → the setting's type.
import { parseDuration } from './durations.js'
import { UsageError } from '../util/errors.js'
import { SPECS } from './options.js'

export function coerce (name: string, value: unknown, where: string): string | number | boolean {
  const spec = SPECS.get(name)
  if (!spec) throw new UsageError(`${where}: unknown setting '${name}'`)
  if (spec.type === 'number') {
    const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN
    if (!Number.isFinite(n)) throw new UsageError(`${where} must be a number, got '${String(value)}'`)
    return n
  }
  if (spec.type === 'duration') {
    const seconds = typeof value === 'number' ? value : typeof value === 'string' ? parseDuration(value) : undefined
    if (seconds === undefined || !Number.isFinite(seconds)) {
      throw new UsageError(`${where} must be a duration such as 30s, 500ms, 5m or 1h, or a number of seconds, got '${String(value)}'`)
    }
    return seconds
  }
  // YAML reads `workers: 4` as a number; the setting also takes `auto`.
  if (name === 'workers' && typeof value === 'number') return String(value)
  // eslint-disable-next-line valid-typeof -- spec.type is string or boolean here: a typeof name
  if (typeof value !== spec.type) throw new UsageError(`${where} must be a ${spec.type}, got '${String(value)}'`)
  return value as string | boolean
}
