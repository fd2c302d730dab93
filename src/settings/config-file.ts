// The --config file: YAML or JSON, its keys the flag names, its paths relative to its folder.
import { dirname, resolve } from 'node:path'
import { firstLine, UsageError } from '../util/errors.js'
import * as lazy from '../util/lazy.js'
import { describeFsError, readRegularFileSync } from '../util/files.js'
import { coerce } from './coerce.js'
import { unknownSetting } from './mistakes.js'
import { nearest } from './suggest.js'
import { SPECS, type OptionName } from './options.js'
import type { RawSettings, Settings } from './types.js'

// Settings, not data: far more than any config file needs.
const MAX_CONFIG_FILE_BYTES = 1024 * 1024

// What a config file's `clusters:` entry may say: where one cluster is and how to reach it.
const CLUSTER_KEYS = new Set(['upstream', 'cacert', 'cert', 'key', 'cacert-data', 'cert-data', 'key-data', 'upstream-token-file', 'upstream-token-data', 'key-passphrase-file',
  'insecure-skip-tls-verify', 'tls-server-name', 'kubeconfig', 'context', 'cluster', 'user'])

/** Where a setting was given, when it was given in a config file: `'port' (config file /etc/mtls-proxy.yaml)`. */
export function inConfigFile (name: string, file: string): string {
  return `'${name}' (config file ${file})`
}

/** One setting from a config file, coerced, a path made relative to the file. */
function fileValue (file: string, name: string, value: unknown, label: string): string | number | boolean {
  const v = coerce(name, value, label)
  return SPECS.get(name)?.path && typeof v === 'string' ? resolve(dirname(file), v) : v
}

function readClusters (file: string, list: unknown): Settings['clusters'] {
  if (!Array.isArray(list)) throw new UsageError(`config file ${file}: 'clusters' must be a list of mappings, each with a name`)
  return list.map((entry: unknown, i) => {
    const where = `clusters[${i}] (config file ${file})`
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new UsageError(`${where} must be a mapping`)
    const raw: RawSettings = {}
    for (const [name, value] of Object.entries(entry)) {
      if (name === 'name') continue
      if (!CLUSTER_KEYS.has(name)) {
        throw new UsageError(`${where}: '${name}' cannot be set for one cluster (it may say name, ${[...CLUSTER_KEYS].join(', ')})`)
      }
      if (value !== null && value !== undefined) raw[name as OptionName] = fileValue(file, name, value, `${where} '${name}'`)
    }
    const name = (entry as Record<string, unknown>).name
    if (typeof name !== 'string' || name === '') throw new UsageError(`${where} needs a name: it is served under /clusters/NAME/`)
    return { name, raw, where }
  })
}

export function readConfigFile (file: string): { raw: RawSettings; clusters: Settings['clusters'] } {
  let text: string
  try {
    text = readRegularFileSync(file, MAX_CONFIG_FILE_BYTES).text
  } catch (err) {
    throw new UsageError(`cannot read config file ${file}: ${describeFsError(err)}`)
  }
  let doc: unknown
  try {
    // Warnings off: yaml prints them to stderr, past the log and its redaction, quoting the line.
    doc = lazy.yaml().parse(text, { logLevel: 'error' }) ?? {}
  } catch (err) {
    throw new UsageError(`config file ${file} is not valid YAML or JSON: ${firstLine(err)}`)
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new UsageError(`config file ${file} must hold a mapping of settings, like 'upstream: https://…'`)
  }
  const raw: RawSettings = {}
  let clusters: Settings['clusters'] = []
  for (const [name, value] of Object.entries(doc)) {
    if (name === 'config') throw new UsageError(`config file ${file}: 'config' cannot be set inside a config file`)
    if (name === 'clusters') {
      if (value !== null && value !== undefined) clusters = readClusters(file, value)
      continue
    }
    if (!SPECS.has(name)) {
      const near = nearest(name, [...SPECS.keys(), 'clusters'].filter((key) => key !== 'config'))
      throw new UsageError(`${unknownSetting(inConfigFile(name, file), near === undefined ? undefined : `'${near}'`)} (see --help)`)
    }
    if (value === null || value === undefined) continue
    // A path in the file means a path next to the file, wherever the proxy was started from.
    raw[name as OptionName] = fileValue(file, name, value, inConfigFile(name, file))
  }
  return { raw, clusters }
}
