// Loopback ports for tests: one nobody listens on (for "unreachable" and for a fixed --port), and
// one held busy until the test ends.
import { createServer, type AddressInfo, type Server } from 'node:net'
import type { Teardown } from './pki.js'

async function listening (): Promise<Server> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return server
}

/** A port that was free a moment ago: nothing listens on it now. */
export async function freePort (): Promise<number> {
  const probe = await listening()
  const { port } = probe.address() as AddressInfo
  await new Promise((resolve) => probe.close(resolve))
  return port
}

/** A port something listens on until the test ends. */
export async function busyPort (t: Teardown): Promise<number> {
  const busy = await listening()
  t.teardown(() => new Promise((resolve) => busy.close(resolve)))
  return (busy.address() as AddressInfo).port
}
