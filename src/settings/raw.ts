// A setting of the merged, unvalidated settings, as text or milliseconds, with its default.
import { UsageError } from '../util/errors.js'
import { OPTIONS, SPECS, type OptionName, type OptionSpec } from './options.js'
import type { RawSettings } from './types.js'

export function str (raw: RawSettings, name: OptionName): string | undefined {
  const v = raw[name]
  return typeof v === 'string' && v !== '' ? v : undefined
}

/** A setting the table gives a default: as given, or (given empty) its default. */
export function text (raw: RawSettings, name: OptionName): string {
  return str(raw, name) ?? String(SPECS.get(name)?.default ?? '')
}

// Node's timers hold at most 2^31-1 ms (24.8 days); a longer one would fire at once.
const MAX_TIMER_MS = 2 ** 31 - 1

/** A duration setting in milliseconds, as timers take it: a whole millisecond at least, 24.8 days at most. */
export function milliseconds (raw: RawSettings, name: OptionName, { allowZero }: { allowZero: boolean }, label: string): number {
  const v = raw[name] as number
  const ms = Math.round(v * 1000)
  const got = `got ${Number(v.toPrecision(6))} s`
  if (v < 0 || (!allowZero && v === 0)) throw new UsageError(`${label} must be ${allowZero ? 'zero or more' : 'more than zero'}, ${got}`)
  if (v > 0 && ms === 0) throw new UsageError(`${label} must be at least 1ms${allowZero ? ' (or 0)' : ''}, ${got}`)
  if (ms > MAX_TIMER_MS) throw new UsageError(`${label} must be at most 24 days (${MAX_TIMER_MS} ms), ${got}`)
  return ms
}

export function defaults (): RawSettings {
  const raw: RawSettings = {}
  for (const o of OPTIONS as readonly OptionSpec[]) if (o.default !== undefined) raw[o.name as OptionName] = o.default
  return raw
}
