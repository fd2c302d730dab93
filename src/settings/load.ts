// One place decides what the settings mean: flags beat environment variables, which beat the
// config file, which beats the defaults. Everything else receives the validated Config.
import { resolve } from 'node:path'
import { UsageError } from '../util/errors.js'
import { defaultKubeconfigFiles } from '../credentials/kubeconfig.js'
import { proxyEnvironment } from '../upstream/connect-proxy.js'
import { inClusterEnvironment } from '../credentials/in-cluster.js'
import { readFlags, type Flags } from './flags.js'
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
  if (argv[0] === 'kubeconfig') {
    try {
      const fromRaw = (raw: RawSettings, e: NodeJS.ProcessEnv, c: string) =>
        readSettings({ raw, givenAs: {}, help: false, version: false }, e, c)
      return kubeconfigCommand(argv.slice(1), env, cwd, fromRaw)
    } catch (err) {
      throw alsoSaying(err, unknownVariables(env))
    }
  }
  const { ours, exec } = splitAtCommand(argv)
  const flags = readFlags(ours)
  if (flags.help) return { action: 'help' }
  if (flags.version) return { action: 'version' }
  if (exec?.length === 0) throw new UsageError('nothing to run after --; e.g. mtls-proxy --kubeconfig cce.yaml -- kubectl get pods')
  // Said with the error too: a misspelt variable is often why a setting is missing.
  const warnings = unknownVariables(env)
  try {
    const settings = readSettings(flags, env, cwd)
    if (!exec) return { action: 'run', config: configFromSettings(settings), warnings, settings }
    return { action: 'run', config: runModeConfig(settings), warnings, settings, exec }
  } catch (err) {
    throw alsoSaying(err, warnings)
  }
}

/** `-- COMMAND ARGS…`: everything after the first `--` is the command's, untouched. */
function splitAtCommand (argv: string[]): { ours: string[]; exec: string[] | undefined } {
  const dash = argv.indexOf('--')
  return dash < 0 ? { ours: argv, exec: undefined } : { ours: argv.slice(0, dash), exec: argv.slice(dash + 1) }
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

function readSettings (flags: Flags, env: NodeJS.ProcessEnv, cwd: string): Settings {
  const fromFlags = resolvePaths(flags.raw, cwd)
  const fromEnv = resolvePaths(readEnv(env), cwd)
  const named = str(fromFlags, 'config') ?? str(fromEnv, 'config')
  const file = named === undefined ? undefined : resolve(cwd, named)
  const fromFile = file === undefined ? { raw: {}, clusters: [] } : readConfigFile(file)
  return {
    // Flags beat variables, which beat the config file, which beats the defaults.
    raw: { ...defaults(), ...fromFile.raw, ...fromEnv, ...fromFlags },
    givenAt: {
      ...(file === undefined ? {} : labels(fromFile.raw, (name) => inConfigFile(name, file))),
      ...labels(fromEnv, envName),
      ...labels(fromFlags, (name) => flags.givenAs[name] ?? `--${name}`),
    },
    environment: environmentOf(env, cwd),
    clusters: fromFile.clusters,
  }
}

/** What kubectl would take from the environment, read once. */
function environmentOf (env: NodeJS.ProcessEnv, cwd: string): Settings['environment'] {
  const kubeconfig = defaultKubeconfigFiles(env, cwd)
  return { kubeconfig, proxy: proxyEnvironment(env), inCluster: inClusterEnvironment(env, kubeconfig.files) }
}

/** Each setting of one source, named as that source names it. */
function labels (raw: RawSettings, label: (name: OptionName) => string): GivenAt {
  return Object.fromEntries(Object.keys(raw).map((name) => [name, label(name as OptionName)]))
}
