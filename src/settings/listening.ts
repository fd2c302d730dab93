// Where and how the proxy listens: the address and port or a Unix socket, who else may reach it,
// how many processes and connections, and the status listener.
import { isIP } from 'node:net'
import { UsageError } from '../util/errors.js'
import { mustBe } from './mistakes.js'
import { isLoopback, unbracketed } from '../util/addresses.js'
import { str, text } from './raw.js'
import type { Config, RawSettings, Where } from './types.js'

// More processes than this only share out the same cores more thinly.
export const MAX_WORKERS = 64

type Listening = Pick<Config, 'address' | 'port' | 'unixSocket' | 'maxConnections' | 'workers' | 'allowNonLoopback'>

export function listening (raw: RawSettings, where: Where): Listening {
  const address = listenAddress(raw, where)
  const unixSocket = str(raw, 'unix-socket')
  const allowNonLoopback = raw['allow-non-loopback'] === true
  if (!unixSocket && !isLoopback(address)) checkBeyondLoopback(raw, address)
  const maxConnections = connectionCap(raw, where)
  const workers = workerCount(text(raw, 'workers'), where)
  if (workers !== 1 && unixSocket) {
    throw new UsageError(`--workers ${workers} cannot share --unix-socket: the socket is checked and watched by one process; use --workers 1 or a TCP --port`)
  }
  return { address, port: port(raw, where), unixSocket, maxConnections, workers, allowNonLoopback }
}

/**
 * What the start says about who can act with the credentials through a listener beyond loopback, as
 * it is: with --token-file, those who reach the port and hold the token (who can read it on the wire
 * without --listen-cert); without, anyone who reaches it. Undefined on loopback or a Unix socket.
 */
export function exposure (config: Pick<Config, 'address' | 'unixSocket' | 'callerToken' | 'https'>, identity: string): string | undefined {
  if (config.unixSocket || isLoopback(config.address)) return undefined
  const listening = `listening on non-loopback address ${config.address}`
  if (config.callerToken === undefined) return `${listening} with no --token-file: anyone who can reach it acts as ${identity}`
  const who = `${listening}: anyone who can reach it and holds the --token-file token acts as ${identity}`
  return config.https ? who : `${who}; the token travels in clear text (and kubectl will not send it over http:// at all) unless --listen-cert and --listen-key serve HTTPS`
}

/** Bare, without IPv6 brackets. */
function listenAddress (raw: RawSettings, where: Where): string {
  const address = unbracketed(text(raw, 'address'))
  if (address !== 'localhost' && isIP(address) === 0) {
    throw mustBe(where('address'), 'an IP address or localhost', text(raw, 'address'))
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

function connectionCap (raw: RawSettings, where: Where): number {
  const maxConnections = raw['max-connections'] as number
  if (!Number.isInteger(maxConnections) || maxConnections < 1) {
    throw mustBe(where('max-connections'), 'a whole number above zero', maxConnections)
  }
  return maxConnections
}

function workerCount (value: string, where: Where): number | 'auto' {
  if (value === 'auto') return 'auto'
  const n = /^\d{1,3}$/.test(value) ? Number(value) : NaN
  if (!(n >= 1 && n <= MAX_WORKERS)) {
    throw mustBe(where('workers'), `auto or a whole number from 1 to ${MAX_WORKERS}`, value)
  }
  return n
}

function port (raw: RawSettings, where: Where): number {
  const port = raw.port as number
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw mustBe(where('port'), 'a whole number from 0 to 65535', port)
  return port
}

/** --status-address: HOST:PORT, the host an IP address (bracketed for IPv6) or localhost. */
export function statusAddress (raw: RawSettings, where: Where): { host: string; port: number } | undefined {
  const value = str(raw, 'status-address')
  if (value === undefined) return undefined
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+|localhost)):(\d{1,5})$/.exec(value)
  const port = Number(m?.[3])
  if (!m || port > 65535) {
    throw mustBe(where('status-address'), 'HOST:PORT with an IP address, e.g. 0.0.0.0:9090 or [::]:9090', value)
  }
  return { host: m[1] ?? m[2]!, port }
}
