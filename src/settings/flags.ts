// The command line's flags, read by node:util's parseArgs from the table.
import { parseArgs } from 'node:util'
import { UsageError } from '../util/errors.js'
import { nearest } from './suggest.js'
import { coerce } from './coerce.js'
import { OPTIONS, type OptionName, type OptionSpec } from './options.js'
import type { RawSettings } from './types.js'

export function readFlags (argv: string[]): { raw: RawSettings; help: boolean; version: boolean } {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean' },
  }
  for (const o of OPTIONS as readonly OptionSpec[]) if (!o.noFlag) options[o.name] = { type: o.type === 'boolean' ? 'boolean' : 'string' }
  let parsed
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: false, allowNegative: true })
  } catch (err) {
    const message = (err as Error).message.split('\n')[0]!
    const unknown = /^Unknown option '--([^'=]+)'/.exec(message)?.[1]
    // Booleans have a --no- form too.
    const names = Object.entries(options).flatMap(([name, o]) => (o.type === 'boolean' ? [name, `no-${name}`] : [name]))
    const near = unknown === undefined ? undefined : nearest(unknown, names)
    throw new UsageError(`${message}${near ? `; did you mean --${near}?` : ''} (see --help)`)
  }
  const { help, version, ...rest } = parsed.values as Record<string, string | boolean | undefined>
  const raw: RawSettings = {}
  for (const [name, value] of Object.entries(rest)) {
    if (value !== undefined) raw[name as OptionName] = coerce(name, value, `--${name}`)
  }
  return { raw, help: help === true, version: version === true }
}
