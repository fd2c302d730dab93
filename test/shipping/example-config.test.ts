// The example config file and the README stay in step with the settings the code knows.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { loadConfig } from '../../src/settings/load.js'
import { OPTIONS, envName, type OptionSpec } from '../../src/settings/options.js'
import { ROOT } from '../helpers/root.js'

t.test('config/mtls-proxy.example.yaml loads and names every setting', async (t) => {
  const file = `${ROOT}/config/mtls-proxy.example.yaml`
  const command = loadConfig(['--config', file], {})
  t.equal(command.action, 'run')
  if (command.action !== 'run') return
  t.equal(command.config.credentials.server!.href, 'https://192.168.0.18:5443/')
  t.equal(command.config.port, 8001)
  const text = readFileSync(file, 'utf8')
  for (const o of OPTIONS) {
    if (o.name === 'config') continue
    t.match(text, new RegExp(`^#? ?${o.name}:`, 'm'), `example mentions ${o.name}`)
  }
})

t.test('the README documents every flag and its environment variable', async (t) => {
  const readme = readFileSync(`${ROOT}/README.md`, 'utf8')
  for (const o of OPTIONS as readonly OptionSpec[]) {
    if (!o.noFlag) t.match(readme, `\`--${o.name}`, `README has --${o.name}`)
    t.match(readme, `\`${envName(o.name)}\``, `README has ${envName(o.name)}`)
  }
  t.match(readme.split('\n').slice(0, 15).join('\n'), /npm install && npm run demo/)
  t.match(readme.split('\n').slice(0, 15).join('\n'), /npm test/)
})
