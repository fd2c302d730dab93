// The command line's flags, read by node:util's parseArgs from the table, spelt as kubectl spells
// them too: `-p 8001`, `--port=8001`, `--server` for --upstream, `--x=true|false` for a switch.
import { parseArgs } from 'node:util'
import { UsageError } from '../util/errors.js'
import { mustBe, unknownSetting } from './mistakes.js'
import { nearest } from './suggest.js'
import { coerce } from './coerce.js'
import { KUBECTL_FLAGS, kubectlAnswer, type KubectlFlag } from './kubectl-flags.js'
import { OPTIONS, envName, type OptionName, type OptionSpec } from './options.js'
import type { GivenAt, RawSettings } from './types.js'

type FlagOptions = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>

/** What each flag name means: a setting of ours (by any of its names), or a flag of kubectl's that is not. */
const MEANING = new Map<string, { setting: OptionSpec } | { kubectl: KubectlFlag }>([
  ...(OPTIONS as readonly OptionSpec[]).filter((o) => !o.noFlag)
    .flatMap((o) => [o.name, ...(o.aliases ?? [])].map((name) => [name, { setting: o }] as const)),
  ...KUBECTL_FLAGS.map((k) => [k.name, { kubectl: k }] as const),
])

const OPTIONS_OF_PARSE: FlagOptions = {
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
  ...Object.fromEntries([...MEANING].map(([name, m]) => {
    const { type, short } = 'setting' in m ? { type: m.setting.type === 'boolean' ? 'boolean' as const : 'string' as const, short: name === m.setting.name ? m.setting.short : undefined } : m.kubectl
    return [name, { type, ...(short ? { short } : {}), ...('kubectl' in m && m.kubectl.multiple ? { multiple: true } : {}) }]
  })),
}

export interface Flags {
  raw: RawSettings
  /** each setting's flag as it was typed (`-p`, `--server`), for messages */
  givenAs: GivenAt
  help: boolean
  version: boolean
}

export function readFlags (argv: string[]): Flags {
  const args = switchesSpelt(argv)
  let tokens
  try {
    tokens = parseArgs({ args, options: OPTIONS_OF_PARSE, strict: true, allowPositionals: false, allowNegative: true, tokens: true }).tokens
  } catch (err) {
    throw flagMistake(err as Error, argv)
  }
  const flags: Flags = { raw: {}, givenAs: {}, help: false, version: false }
  for (const token of tokens) {
    if (token.kind !== 'option') continue
    const value = token.value ?? !token.rawName.startsWith('--no-')
    if (token.name === 'help') { flags.help = value === true; continue }
    if (token.name === 'version') { flags.version = value === true; continue }
    const meaning = MEANING.get(token.name)!
    if ('kubectl' in meaning) {
      // The first one that mtls-proxy cannot take as asked is the answer.
      const answer = kubectlAnswer(meaning.kubectl, token.rawName.replace(/^--no-/, '--'), value)
      if (answer !== undefined) throw new UsageError(answer)
      continue
    }
    // The last spelling wins, as the last of the same flag does.
    const name = meaning.setting.name as OptionName
    flags.givenAs[name] = token.rawName.startsWith('--no-') ? `--${token.name}` : token.rawName
    flags.raw[name] = coerce(name, value, flags.givenAs[name])
  }
  return flags
}

// Go's strconv.ParseBool, which kubectl's flags use: `--insecure-skip-tls-verify=true`.
const TRUE = /^(?:1|t|true)$/i
const FALSE = /^(?:0|f|false)$/i

/**
 * argv with a switch given a value written as parseArgs reads switches (`--x=false` → `--no-x`), and
 * `-p=8001` as `-p 8001`, as kubectl's flag parser reads them. A flag's value is skipped, whatever it looks like.
 */
function switchesSpelt (argv: string[]): string[] {
  const shorts = new Map(Object.entries(OPTIONS_OF_PARSE).flatMap(([name, o]) => (o.short ? [[o.short, name] as const] : [])))
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const long = /^--([^=]+)(?:=([^]*))?$/.exec(arg)
    const short = /^-([^-])(=?)([^]*)$/.exec(arg)
    const name = long?.[1] ?? (short ? shorts.get(short[1]!) : undefined)
    const type = name === undefined ? undefined : OPTIONS_OF_PARSE[name]?.type
    if (long?.[2] !== undefined && type === 'boolean') {
      if (TRUE.test(long[2])) out.push(`--${name!}`)
      else if (FALSE.test(long[2])) out.push(`--no-${name!}`)
      else throw mustBe(`--${name!}`, 'true or false', long[2])
      continue
    }
    if (short?.[2] === '=' && type === 'string') {
      out.push(`-${short[1]!}`, short[3]!)
      continue
    }
    out.push(arg)
    const bare = long ? long[2] === undefined : short?.[3] === ''
    if (type === 'string' && bare && i + 1 < argv.length) out.push(argv[++i]!)
  }
  return out
}

/** parseArgs's complaint in the words a variable or the config file would get for the same mistake. */
function flagMistake (err: Error, argv: string[]): UsageError {
  const message = err.message.split('\n')[0]!
  const unknown = /^Unknown option '(--?[^'=]+)'/.exec(message)?.[1]
  const secret = unknown === undefined ? undefined : (OPTIONS as readonly OptionSpec[]).find((o) => o.noFlag && `--${o.name}` === unknown)
  if (secret) {
    return new UsageError(`${unknown} has no flag: every local user sees a command line in ps. Give ${envName(secret.name)}, or '${secret.name}:' in a config file`)
  }
  if (unknown !== undefined) {
    // Booleans have a --no- form too; kubectl's names that are not settings are no suggestion.
    const names = ['help', 'version', ...[...MEANING].flatMap(([name, m]) => ('kubectl' in m ? [] : m.setting.type === 'boolean' ? [name, `no-${name}`] : [name]))]
    const near = unknown.startsWith('--') ? nearest(unknown.slice(2), names) : undefined
    return new UsageError(`${unknownSetting(unknown, near === undefined ? undefined : `--${near}`)} (see --help)`)
  }
  // `--no-access-log=x`: parseArgs names it by its positive form.
  const on = /^Option '--([^']+)' does not take an argument/.exec(message)?.[1]
  const given = on === undefined ? undefined : argv.find((a) => a.startsWith(`--no-${on}=`))
  if (on !== undefined && given !== undefined) {
    const equals = given.indexOf('=')
    return mustBe(given.slice(0, equals), `given without a value (--${on} or --no-${on})`, given.slice(equals + 1))
  }
  return new UsageError(`${message} (see --help)`)
}
