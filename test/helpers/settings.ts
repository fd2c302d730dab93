// Settings read as the CLI reads them, from a folder, and the credentials they load.
import { loadConfig } from '../../src/settings/load.js'
import type { Config } from '../../src/settings/types.js'
import type { CredentialBundle } from '../../src/credentials/bundle.js'
import { sourceOf } from '../../src/credentials/source.js'

/** `config` and `load` for settings given in `dir`: the Config, and what the proxy would load at start (the same load as every reload). */
export function settingsIn (dir: string) {
  const config = (argv: string[], env: NodeJS.ProcessEnv = {}): Config => {
    const c = loadConfig(argv, env, dir)
    if (c.action !== 'run') throw new Error('run expected')
    return c.config
  }
  const load = (argv: string[], env: NodeJS.ProcessEnv = {}): Promise<CredentialBundle> =>
    sourceOf(config(argv, env).credentials).load(new Date())
  return { config, load }
}
