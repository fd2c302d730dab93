// `mtls-proxy kubeconfig`: the settings that say which clusters a proxy serves and where it listens,
// read as the proxy reads them (flags, MTLS_PROXY_*, the --config file), and the output format.
import { isIP } from 'node:net'
import { parseArgs } from 'node:util'
import { UsageError } from '../util/errors.js'
import { unbracketed } from '../util/addresses.js'
import { coerce } from './coerce.js'
import { clusterSpecs, kubeconfigOnly, kubeconfigToRead } from './credential-spec.js'
import { mustBe } from './mistakes.js'
import { str, text } from './raw.js'
import { allContextsOf } from './validate.js'
import { SPECS, type OptionName } from './options.js'
import type { CommandLine, RawSettings, Settings, Where } from './types.js'

const USAGE = 'mtls-proxy kubeconfig [--kubeconfig FILE] [--context NAME] [--all-contexts] [--config FILE] [--address IP] [--port PORT] [-o yaml|json]'

// The proxy's settings that change what the kubeconfig says; the others change nothing in it.
const FLAGS = ['kubeconfig', 'context', 'cluster', 'user', 'all-contexts', 'config', 'address', 'port'] as const satisfies readonly OptionName[]
const FORMATS = ['yaml', 'json'] as const

type ReadSettings = (flags: RawSettings, env: NodeJS.ProcessEnv, cwd: string) => Settings

/** `mtls-proxy kubeconfig [cluster and listener settings] [-o yaml|json]` */
export function kubeconfigCommand (argv: string[], env: NodeJS.ProcessEnv, cwd: string, readSettings: ReadSettings): CommandLine {
  const { flags, output } = readFlags(argv)
  const { raw, givenAt, environment, clusters } = readSettings(flags, env, cwd)
  const where: Where = (name) => givenAt[name] ?? `--${name}`
  const kubeconfig = kubeconfigToRead(raw, where, environment)?.choice
  const clusterSettings = {
    credentials: kubeconfigOnly(kubeconfig, environment.proxy),
    allContexts: allContextsOf(raw, where, { kubeconfig }),
    clusters: clusterSpecs(clusters, raw, environment),
  }
  // The one kubectl would read, nothing picked from it: where there is none, the proxy was given its server another way
  // (--upstream and --cert on its command line, say), and the kubeconfig names its address alone.
  const kubeconfigOptional = str(raw, 'kubeconfig') === undefined && !clusterSettings.allContexts &&
    (['context', 'cluster', 'user'] as const).every((name) => str(raw, name) === undefined)
  return { action: 'kubeconfig', ...listenedAt(raw, where), output, clusterSettings, kubeconfigOptional }
}

function readFlags (argv: string[]): { flags: RawSettings; output: (typeof FORMATS)[number] } {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { output: { type: 'string', short: 'o' } }
  for (const name of FLAGS) options[name] = { type: name === 'all-contexts' ? 'boolean' : 'string' }
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({ args: argv, options, strict: true, allowPositionals: false, allowNegative: true }).values
  } catch (err) {
    const unknown = /^Unknown option '--([^'=]+)'/.exec((err as Error).message)?.[1]
    const said = unknown !== undefined && SPECS.has(unknown)
      ? `mtls-proxy kubeconfig takes the settings that name the clusters and where the proxy listens, not --${unknown}`
      : (err as Error).message.split('\n')[0]!
    throw new UsageError(`${said} (usage: ${USAGE})`)
  }
  const flags: RawSettings = {}
  for (const name of FLAGS) if (values[name] !== undefined) flags[name] = coerce(name, values[name], `--${name}`)
  // As kubectl: -o json, -ojson, -o=json, --output=json.
  const output = String(values.output ?? 'yaml').replace(/^=/, '')
  if (!(FORMATS as readonly string[]).includes(output)) throw mustBe('--output', FORMATS.join(' or '), output)
  return { flags, output: output as (typeof FORMATS)[number] }
}

/** Where the proxy listens, as a client dials it: a port it picks (0) cannot be written down. */
function listenedAt (raw: RawSettings, where: Where): { address: string; port: number } {
  const address = unbracketed(text(raw, 'address'))
  if (address !== 'localhost' && isIP(address) === 0) throw mustBe(where('address'), 'an IP address or localhost', text(raw, 'address'))
  const port = raw.port as number
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw mustBe(where('port'), `a whole number from 1 to 65535${port === 0 ? ' (0 picks a free port at start: give the one it took)' : ''}`, raw.port)
  }
  return { address, port }
}
