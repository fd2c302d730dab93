// The MTLS_PROXY_* variables, read by env-schema from the table.
import { UsageError } from '../util/errors.js'
import { nearest } from './suggest.js'
import * as lazy from '../util/lazy.js'
import { coerce } from './coerce.js'
import { OPTIONS, envName } from './options.js'
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
    const first = (err as { errors?: Array<{ instancePath: string; message?: string }> }).errors?.[0]
    const variable = first?.instancePath.replace(/^\//, '') ?? ''
    throw new UsageError(`environment variable ${variable} ${first?.message ?? (err as Error).message}, got '${env[variable] ?? ''}'`)
  }
  const raw: RawSettings = {}
  for (const o of OPTIONS) {
    const value = values[envName(o.name)]
    if (value !== undefined && value !== '') {
      raw[o.name] = o.type === 'duration'
        ? coerce(o.name, value, 'environment variable ' +
      `${envName(o.name)}`)
        : value as string | number | boolean
    }
  }
  return raw
}

/** MTLS_PROXY_* variables that name no setting: a typo would otherwise be silently ignored. */
export function unknownVariables (env: NodeJS.ProcessEnv): string[] {
  const known = OPTIONS.map((o) => envName(o.name))
  return Object.keys(env).filter((name) => name.startsWith('MTLS_PROXY_') && !known.includes(name)).map((name) => {
    const near = nearest(name, known)
    return `environment variable ${name} is no setting of mtls-proxy and is ignored${near ? `; did you mean ${near}?` : ''}`
  })
}
