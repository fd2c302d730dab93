// The command line's flags, read by node:util's parseArgs from the table.
import { parseArgs } from 'node:util'
import { UsageError } from '../util/errors.js'
import { mustBe, unknownSetting } from './mistakes.js'
import { nearest } from './suggest.js'
import { coerce } from './coerce.js'
import { OPTIONS, envName, type OptionName, type OptionSpec } from './options.js'
import type { RawSettings } from './types.js'

export function readFlags (argv: string[]): { raw: RawSettings; help: boolean; version: boolean } {
  const options: FlagOptions = {
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean' },
  }
  for (const o of OPTIONS as readonly OptionSpec[]) if (!o.noFlag) options[o.name] = { type: o.type === 'boolean' ? 'boolean' : 'string' }
  let parsed
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: false, allowNegative: true })
  } catch (err) {
    throw flagMistake(err as Error, argv, options)
  }
  const { help, version, ...rest } = parsed.values as Record<string, string | boolean | undefined>
  const raw: RawSettings = {}
  for (const [name, value] of Object.entries(rest)) {
    if (value !== undefined) raw[name as OptionName] = coerce(name, value, `--${name}`)
  }
  return { raw, help: help === true, version: version === true }
}

type FlagOptions = Record<string, { type: 'string' | 'boolean'; short?: string }>

/** parseArgs's complaint in the words a variable or the config file would get for the same mistake. */
function flagMistake (err: Error, argv: string[], options: FlagOptions): UsageError {
  const message = err.message.split('\n')[0]!
  const unknown = /^Unknown option '(--[^'=]+)'/.exec(message)?.[1]
  const secret = unknown === undefined ? undefined : (OPTIONS as readonly OptionSpec[]).find((o) => o.noFlag && `--${o.name}` === unknown)
  if (secret) {
    return new UsageError(`${unknown} has no flag: every local user sees a command line in ps. Give ${envName(secret.name)}, or '${secret.name}:' in a config file`)
  }
  if (unknown !== undefined) {
    // Booleans have a --no- form too.
    const names = Object.entries(options).flatMap(([name, o]) => (o.type === 'boolean' ? [name, `no-${name}`] : [name]))
    const near = nearest(unknown.slice(2), names)
    return new UsageError(`${unknownSetting(unknown, near === undefined ? undefined : `--${near}`)} (see --help)`)
  }
  // `--access-log=maybe`: a switch given a value (parseArgs names --no-access-log=x by its positive form).
  const on = /^Option '--([^']+)' does not take an argument/.exec(message)?.[1]
  const given = on === undefined ? undefined : argv.find((a) => a.startsWith(`--${on}=`) || a.startsWith(`--no-${on}=`))
  if (on !== undefined && given !== undefined) {
    const equals = given.indexOf('=')
    return mustBe(given.slice(0, equals), `given without a value (--${on} or --no-${on})`, given.slice(equals + 1))
  }
  return new UsageError(`${message} (see --help)`)
}
