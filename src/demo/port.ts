// The demo's port: read from its arguments, found free before anything starts (8001 is often a
// kubectl proxy's, through which the demo's commands would reach a real cluster), and waited on
// until the proxy answers there.
import { request } from 'node:http'
import { createServer, type AddressInfo } from 'node:net'

export const DEFAULT_PORT = 8001

/** `--port N` or `--port=N` taken out of the arguments (the last one wins, as mtls-proxy reads flags); else 8001. */
export function portArgument (args: readonly string[]): { port: number | string; rest: string[] } {
  const rest: string[] = []
  let given: string | undefined
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg === '--port') given = args[++i] ?? ''
    else if (arg.startsWith('--port=')) given = arg.slice('--port='.length)
    else rest.push(arg)
  }
  if (given === undefined) return { port: DEFAULT_PORT, rest }
  const port = /^\d{1,5}$/.test(given) ? Number(given) : NaN
  if (!(port >= 0 && port <= 65535)) return { port: `--port must be a number from 0 to 65535, got '${given}'`, rest }
  return { port, rest }
}

function tryListen (port: number): Promise<number | NodeJS.ErrnoException> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', resolve)
    server.listen(port, '127.0.0.1', () => {
      const taken = (server.address() as AddressInfo).port
      server.close(() => resolve(taken))
    })
  })
}

/**
 * The port to serve on, free now (0: one picked here, so the commands printed name it), or what to
 * tell the user: a port in use names another that is free, to run the demo on.
 */
export async function portFree (port: number | string): Promise<number | string> {
  if (typeof port === 'string') return port
  const free = await tryListen(port)
  if (typeof free === 'number') return free
  if (free.code !== 'EADDRINUSE') return `cannot listen on 127.0.0.1:${port}: ${free.message}`
  const other = await tryListen(0)
  const suggestion = typeof other === 'number' ? other : DEFAULT_PORT + 1
  return `127.0.0.1:${port} is in use (by a kubectl proxy? the demo's commands would reach whatever serves there); ` +
    `run the demo on a free port: npm run demo -- --port ${suggestion}`
}

function healthy (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/-/healthz', agent: false }, (res) => {
      res.resume()
      resolve(res.statusCode === 200)
    })
    req.once('error', () => resolve(false))
    req.end()
  })
}

/** Resolves true once the proxy answers on the port, false if it exits first. */
export async function untilServing (port: number, exited: Promise<unknown>): Promise<boolean> {
  const state = { gone: false }
  void exited.then(() => { state.gone = true })
  while (!state.gone) {
    if (await healthy(port)) return true
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return false
}
