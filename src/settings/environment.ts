// The MTLS_PROXY_* variables, read by env-schema from the table.
import { UsageError } from '../util/errors.js'
import { unknownSetting, wrongType } from './mistakes.js'
import { nearest } from './suggest.js'
import * as lazy from '../util/lazy.js'
import { coerce } from './coerce.js'
import { OPTIONS, envName, type OptionSpec } from './options.js'
import type { RawSettings } from './types.js'

export function readEnv (env: NodeJS.ProcessEnv): RawSettings {
  if (!OPTIONS.some((o) => env[envName(o.name)] !== undefined)) return {}
  const properties: Record<string, { type: string }> = {}
  // Durations arrive as text (`30s`) and are read below, as flags are.
  for (const o of OPTIONS) properties[envName(o.name)] = { type: o.type === 'duration' ? 'string' : o.type }
  let values: Record<string, unknown>
  try {
    values = lazy.envSchema()({ schema: { type: 'object', properties }, data: { ...env }, env: false, dotenv: false })
  } catch (err) {
    throw variableMistake(err as EnvSchemaError, env)
  }
  const raw: RawSettings = {}
  for (const o of OPTIONS) {
    const value = values[envName(o.name)]
    // What env-schema made of the text is checked as a flag's or the config file's value is (Infinity is no port).
    if (value !== undefined && value !== '') raw[o.name] = coerce(o.name, value, envName(o.name))
  }
  return raw
}

/** What env-schema throws for data its schema refuses: ajv's errors, each naming the variable by its path (`/MTLS_PROXY_PORT`). */
interface EnvSchemaError extends Error {
  errors?: Array<{ instancePath: string; keyword: string }>
}

/** env-schema's complaint (ajv's `must be number`) in the words a flag or the config file gets for the same value. */
function variableMistake (err: EnvSchemaError, env: NodeJS.ProcessEnv): UsageError {
  const first = err.errors?.[0]
  const variable = first?.instancePath.replace(/^\//, '') ?? ''
  const spec = (OPTIONS as readonly OptionSpec[]).find((o) => envName(o.name) === variable)
  if (first?.keyword === 'type' && spec !== undefined) return wrongType(variable, spec, env[variable])
  // The schema says only types; should ajv say more, it is said as ajv says it.
  return new UsageError(`${variable || 'the environment'}: ${err.message}`)
}

/** MTLS_PROXY_* variables that name no setting: a typo would otherwise be silently ignored. */
export function unknownVariables (env: NodeJS.ProcessEnv): string[] {
  const known = OPTIONS.map((o) => envName(o.name))
  return Object.keys(env).filter((name) => name.startsWith('MTLS_PROXY_') && !known.includes(name))
    .map((name) => `${unknownSetting(name, nearest(name, known))} (ignored)`)
}
