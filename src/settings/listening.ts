// Where and how the proxy listens: the address and port or a Unix socket, who else may reach it,
// how many processes and connections, and the status listener.
import { isIP } from 'node:net'
import { UsageError } from '../util/errors.js'
import { isLoopback, unbracketed } from '../util/addresses.js'
import { str, text } from './raw.js'
import type { Config, RawSettings } from './types.js'

// More processes than this only share out the same cores more thinly.
export const MAX_WORKERS = 64

type Listening = Pick<Config, 'address' | 'port' | 'unixSocket' | 'maxConnections' | 'workers' | 'allowNonLoopback'>

export function listening (raw: RawSettings): Listening {
  const address = listenAddress(raw)
  const unixSocket = str(raw, 'unix-socket')
  const allowNonLoopback = raw['allow-non-loopback'] === true
  if (!unixSocket && !isLoopback(address)) checkBeyondLoopback(raw, address)
  const maxConnections = connectionCap(raw)
  const workers = workerCount(text(raw, 'workers'))
  if (workers !== 1 && unixSocket) {
    throw new UsageError(`--workers ${workers} cannot share --unix-socket: the socket is checked and watched by one process; use --workers 1 or a TCP --port`)
  }
  return { address, port: port(raw), unixSocket, maxConnections, workers, allowNonLoopback }
}

/** Bare, without IPv6 brackets. */
function listenAddress (raw: RawSettings): string {
  const address = unbracketed(text(raw, 'address'))
  if (address !== 'localhost' && isIP(address) === 0) {
    throw new UsageError(`--address must be an IP address or localhost, got '${text(raw, 'address')}'`)
  }
  return address
}

/** Beyond loopback, anyone who reaches the port acts with the client certificate: only when the user says so, and says who may. */
function checkBeyondLoopback (raw: RawSettings, address: string): void {
  const allowNonLoopback = raw['allow-non-loopback'] === true
  const callersChosen = str(raw, 'token-file') !== undefined || raw['allow-unauthenticated'] === true
  if (allowNonLoopback && callersChosen) return
  // Everything it takes, in one message: not one missing setting per attempt.
  const missing = [
    ...(allowNonLoopback ? [] : ['--allow-non-loopback (you mean it)']),
    ...(callersChosen ? [] : ['--token-file FILE (callers must present its token; with --listen-cert and --listen-key so kubectl will send it) or --allow-unauthenticated (anyone who reaches it acts as you)']),
  ]
  throw new UsageError(`--address ${address} is not a loopback address: anyone who can reach it would act with your client certificate; to listen there anyway, pass ${missing.join(', and ')}`)
}

function connectionCap (raw: RawSettings): number {
  const maxConnections = raw['max-connections'] as number
  if (!Number.isInteger(maxConnections) || maxConnections < 1) {
    throw new UsageError(`--max-connections must be a whole number above zero, got ${maxConnections}`)
  }
  return maxConnections
}

function workerCount (value: string): number | 'auto' {
  if (value === 'auto') return 'auto'
  const n = /^\d{1,3}$/.test(value) ? Number(value) : NaN
  if (!(n >= 1 && n <= MAX_WORKERS)) {
    throw new UsageError(`--workers must be auto or a whole number from 1 to ${MAX_WORKERS}, got '${value}'`)
  }
  return n
}

function port (raw: RawSettings): number {
  const port = raw.port as number
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be a whole number from 0 to 65535, got ${port}`)
  return port
}

/** --status-address: HOST:PORT, the host an IP address (bracketed for IPv6) or localhost. */
export function statusAddress (value: string | undefined): { host: string; port: number } | undefined {
  if (value === undefined) return undefined
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+|localhost)):(\d{1,5})$/.exec(value)
  const port = Number(m?.[3])
  if (!m || port > 65535) {
    throw new UsageError(`--status-address must be HOST:PORT with an IP address, e.g. 0.0.0.0:9090 or [::]:9090, got '${value}'`)
  }
  return { host: m[1] ?? m[2]!, port }
}
