// For the --workers tests: an upstream that answers with the caller's identity, fresh connections
// (each handed to the next worker), and what the proxy's processes said.
import { request, type IncomingMessage } from 'node:http'
import { cpuCount } from '../../src/process/workers/cores.js'
import type { DemoPki } from '../../src/demo/pki.js'
import { startCli, type RunningCli } from './cli.js'
import type { Teardown } from './pki.js'
import { caller, startUpstream } from './upstream.js'
import { until } from './until.js'

/** Answers with the client certificate's CN the request came with; /slow after a second. */
export function identityUpstream (t: Teardown, pki: DemoPki) {
  return startUpstream(t, pki, (req, res) => {
    const answer = () => res.end(caller(req).cn ?? 'connection gone')
    if (req.url?.startsWith('/slow')) setTimeout(answer, 1_000)
    else answer()
  })
}

/** A request on a connection of its own, so the listener hands it to the next worker. */
export function fresh (url: string, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false }, (res: IncomingMessage) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }))
    })
    req.on('error', reject)
    // Accepted while no worker was left, a connection can wait for good: not this test's.
    req.setTimeout(5_000, () => req.destroy(new Error('no answer within 5 s')))
    req.end()
  })
}

/** Starts the CLI and waits until every worker serves (the primary says so). */
export async function startWorkers (t: Teardown, args: string[], env: NodeJS.ProcessEnv = {}, options = {}): Promise<RunningCli> {
  const proxy = await startCli(t, args, env, options)
  await until(() => proxy.logs().some((l) => l.msg === `${workerCount(args)} worker processes share the listener`), 15_000)
  return proxy
}
export const workerCount = (args: string[]) => {
  const n = args[args.indexOf('--workers') + 1]
  return n === 'auto' ? cpuCount() : Number(n)
}
export const pidsOf = (proxy: RunningCli) => proxy.logs().find((l) => Array.isArray(l.pids))?.pids as number[]
export const gone = (pid: number) => { try { process.kill(pid, 0); return false } catch { return true } }
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
export const count = (text: string, metric: RegExp) => Number(metric.exec(text)?.[1] ?? NaN)
export const said = (proxy: RunningCli, start: string) => proxy.logs().filter((l) => String(l.msg).startsWith(start))
export const workersSeen = (proxy: RunningCli) => new Set(proxy.logs().filter((l) => l.msg === 'request').map((l) => l.worker))
