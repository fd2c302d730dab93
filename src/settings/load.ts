// One place decides what the settings mean: flags beat environment variables, which beat the
// config file, which beats the defaults. Everything else receives the validated Config.
import { resolve } from 'node:path'
import { UsageError } from '../util/errors.js'
import { defaultKubeconfigFiles } from '../credentials/kubeconfig.js'
import { proxyEnvironment } from '../upstream/connect-proxy.js'
import { readFlags } from './flags.js'
import { readEnv, unknownVariables } from './environment.js'
import { inConfigFile, readConfigFile } from './config-file.js'
import { defaults, str } from './raw.js'
import { validate } from './validate.js'
import { runModeConfig } from './run-mode.js'
import { kubeconfigCommand } from './kubeconfig-command.js'
import { SPECS, envName, type OptionName } from './options.js'
import type { CommandLine, Config, GivenAt, RawSettings, Settings } from './types.js'

/** Reads flags, environment and config file into one validated Config; a user mistake throws UsageError. */
export function loadConfig (argv: string[], env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): CommandLine {
  if (argv[0] === 'kubeconfig') return kubeconfigCommand(argv.slice(1))
  // `-- COMMAND ARGS…`: everything after the first `--` is the command's, untouched.
  const dash = argv.indexOf('--')
  const exec = dash < 0 ? undefined : argv.slice(dash + 1)
  const flags = readFlags(dash < 0 ? argv : argv.slice(0, dash))
  if (flags.help) return { action: 'help' }
  if (flags.version) return { action: 'version' }
  if (exec?.length === 0) throw new UsageError('nothing to run after --; e.g. mtls-proxy --kubeconfig cce.yaml -- kubectl get pods')
  // Said with the error too: a misspelt variable is often why a setting is missing.
  const warnings = unknownVariables(env)
  try {
    const settings = readSettings(flags.raw, env, cwd)
    if (!exec) return { action: 'run', config: configFromSettings(settings), warnings, settings }
    return { action: 'run', config: runModeConfig(settings), warnings, settings, exec }
  } catch (err) {
    throw alsoSaying(err, warnings)
  }
}

/** The Config of settings read earlier (by another process); throws UsageError as loadConfig does. */
export function configFromSettings (settings: Settings): Config {
  return validate(settings.raw, settings.givenAt, settings.environment, settings.clusters)
}

/** A user mistake, with the warnings that may explain it (a misspelt variable is often why a setting is missing). */
export function alsoSaying (err: unknown, warnings: readonly string[]): unknown {
  return err instanceof UsageError && warnings.length > 0 ? new UsageError(`${err.message} (also: ${warnings.join('; ')})`) : err
}

/** Paths given as flags or variables mean paths from where the proxy was started. */
function resolvePaths (raw: RawSettings, base: string): RawSettings {
  const out: RawSettings = { ...raw }
  for (const [name, value] of Object.entries(raw) as Array<[OptionName, unknown]>) {
    if (SPECS.get(name)?.path && typeof value === 'string' && value !== '') out[name] = resolve(base, value)
  }
  return out
}

function readSettings (flags: RawSettings, env: NodeJS.ProcessEnv, cwd: string): Settings {
  const flagged = resolvePaths(flags, cwd)
  const fromEnv = resolvePaths(readEnv(env), cwd)
  const configFile = str(flagged, 'config') ?? str(fromEnv, 'config')
  const read = configFile ? readConfigFile(resolve(cwd, configFile)) : { raw: {}, clusters: [] }
  const fromFile = read.raw
  const raw = { ...defaults(), ...fromFile, ...fromEnv, ...flagged }
  const givenAt: GivenAt = {}
  for (const name of Object.keys(fromFile) as OptionName[]) givenAt[name] = inConfigFile(name, resolve(cwd, configFile!))
  for (const name of Object.keys(fromEnv) as OptionName[]) givenAt[name] = envName(name)
  for (const name of Object.keys(flagged) as OptionName[]) givenAt[name] = `--${name}`
  const environment = { kubeconfig: defaultKubeconfigFiles(env, cwd), proxy: proxyEnvironment(env) }
  return { raw, givenAt, environment, clusters: read.clusters }
}
