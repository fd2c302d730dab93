// The real command line, run as a child process exactly as a user runs it: the bundle as it ships
// (node dist/cli.js), built once per run, not the sources through tsx (about a second more per start).
import { spawn, type ChildProcess } from 'node:child_process'
import { bundledCli } from './dist.js'
import type { Teardown } from './pki.js'
import { ROOT } from './root.js'

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

function collect (child: ChildProcess): { out: string[]; err: string[]; exited: Promise<Exit> } {
  const out: string[] = []
  const err: string[] = []
  child.stdout?.on('data', (d: Buffer) => out.push(d.toString()))
  child.stderr?.on('data', (d: Buffer) => err.push(d.toString()))
  const exited = new Promise<Exit>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout: out.join(''), stderr: err.join('') })))
  return { out, err, exited }
}

/**
 * The settings with a free port where they name none: the proxy takes its port before it reads the
 * credentials, so a start meant to fail on a credential would fail on 8001 whenever something holds it.
 */
function anyPortUnlessNamed (args: string[], env: NodeJS.ProcessEnv): string[] {
  const ours = args.includes('--') ? args.slice(0, args.indexOf('--')) : args
  const named = args[0] === 'kubeconfig' || ours.some((a) => /^(?:--port|-p|--config)(?:=|$)|^-p\d/.test(a)) ||
    env.MTLS_PROXY_PORT !== undefined || env.MTLS_PROXY_CONFIG !== undefined
  return named ? args : ['--port', '0', ...args]
}

/** Runs the CLI to completion (killed after timeoutMs); on a free port unless the settings name one. */
export async function runCli (args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 15_000): Promise<Exit> {
  const child = spawn(process.execPath, [await bundledCli(), ...anyPortUnlessNamed(args, env)], { cwd: ROOT, env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const { exited } = collect(child)
  return await exited.finally(() => clearTimeout(timer))
}

export interface RunningCli {
  child: ChildProcess
  port: number
  url: string
  exited: Promise<Exit>
  logs(): Array<Record<string, unknown>>
}

/**
 * Starts the CLI (on --port 0 unless told the settings name a port) and resolves once it logs where it serves.
 * group: in a process group of its own, as a terminal or systemd runs it (signal it all with `process.kill(-pid)`).
 * onSpawn: given the process at once, to signal it while it starts.
 */
export async function startCli (
  t: Teardown, args: string[], env: NodeJS.ProcessEnv = {},
  { anyPort = true, group = false, onSpawn }: { anyPort?: boolean; group?: boolean; onSpawn?: (child: ChildProcess) => void } = {}
): Promise<RunningCli> {
  const child = spawn(process.execPath, [await bundledCli(), ...(anyPort ? ['--port', '0'] : []), ...args],
    { cwd: ROOT, env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: group })
  onSpawn?.(child)
  const { out, exited } = collect(child)
  t.teardown(() => {
    if (group) try { process.kill(-child.pid!, 'SIGKILL') } catch { /* all gone */ }
    else if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  const logs = () => out.join('').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
  const started = Date.now()
  while (Date.now() - started < 15_000) {
    const serving = logs().find((l) => typeof l.listen === 'string')
    if (serving) {
      const url = serving.listen as string
      return { child, port: Number(new URL(url).port), url, exited, logs }
    }
    if (child.exitCode !== null) throw new Error(`mtls-proxy exited early: ${(await exited).stderr}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error('mtls-proxy did not start within 15 s')
}
