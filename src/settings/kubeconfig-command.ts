// `mtls-proxy kubeconfig`: its own two flags.
import { isIP } from 'node:net'
import { parseArgs } from 'node:util'
import { UsageError } from '../util/errors.js'
import { mustBe } from './mistakes.js'
import { unbracketed } from '../util/addresses.js'
import { SPECS } from './options.js'
import type { CommandLine } from './types.js'

/** `mtls-proxy kubeconfig [--address A] [--port P]` */
export function kubeconfigCommand (argv: string[]): CommandLine {
  let values
  try {
    values = parseArgs({ args: argv, options: { address: { type: 'string' }, port: { type: 'string' } }, strict: true }).values
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split('\n')[0]!} (usage: mtls-proxy kubeconfig [--address IP] [--port PORT])`)
  }
  const address = unbracketed(values.address ?? String(SPECS.get('address')!.default))
  if (address !== 'localhost' && isIP(address) === 0) throw mustBe('--address', 'an IP address or localhost', address)
  const port = Number(values.port ?? SPECS.get('port')!.default)
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw mustBe('--port', 'a whole number from 1 to 65535', values.port)
  }
  return { action: 'kubeconfig', address, port }
}
