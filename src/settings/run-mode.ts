// With `-- COMMAND`, the rules that make the proxy the command's private helper.
import { UsageError } from '../util/errors.js'
import { isLoopback } from '../util/addresses.js'
import { validate } from './validate.js'
import type { OptionName } from './options.js'
import type { Config, RawSettings, Settings } from './types.js'

/**
 * With a command to run, the proxy is its private helper: TCP on loopback (a free port unless
 * --port says), one process, its log on stderr at warn unless --log-level says, so the command's
 * output stays its own.
 */
export function runModeConfig (settings: Settings): Config {
  // Only a flag says otherwise: a port or level in the environment or a config file is the resident proxy's.
  const given = (name: OptionName) => settings.givenAt[name] === `--${name}`
  const raw: RawSettings = {
    ...settings.raw,
    ...(given('port') ? {} : { port: 0 }),
    ...(given('log-level') ? {} : { 'log-level': 'warn' }),
  }
  const config = validate(raw, settings.givenAt, settings.environment, settings.clusters)
  const refused = (what: string) =>
    new UsageError(`${what} cannot be used with -- COMMAND: the command gets the proxy on a loopback TCP port`)
  if (config.unixSocket) throw refused('--unix-socket')
  if (config.https) throw refused('--listen-cert (the command gets HTTPS with a certificate made for it)')
  if (config.callerToken) throw refused('--token-file (the command gets a token made for it)')
  if (!isLoopback(config.address)) throw refused(`--address ${config.address}`)
  if (config.workers !== 1) throw refused('--workers')
  return { ...config, logTo: 'stderr' }
}
