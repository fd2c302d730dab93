// `mtls-proxy [settings] -- COMMAND [ARGS…]`: the proxy on a loopback port for the life of one
// command. The command gets MTLS_PROXY_URL and a KUBECONFIG naming the proxy (no credentials in it,
// mode 0600, in a folder only this user can enter, removed afterwards), so that curl and plain
// kubectl work inside it; stdio is inherited, SIGINT, SIGTERM and SIGHUP are passed on, and the
// command's exit status is ours (128+N when signal N ended it, 127 not found, 126 not runnable).
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { constants, tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Config } from './config.js'
import { proxyKubeconfig } from './proxy-kubeconfig.js'
import { serve } from './serve.js'

const FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const

/** Runs the proxy and the command; resolves with the exit status mtls-proxy should end with. */
export async function runWithProxy (command: { config: Config; warnings: string[]; exec: string[] }): Promise<number> {
  // A start-up mistake is the usual one line and exit 2, and the command is not run.
  const serving = await serve(command, undefined, { forCommand: true })
  const folder = await mkdtemp(join(tmpdir(), 'mtls-proxy-'))
  try {
    const kubeconfig = join(folder, 'kubeconfig')
    await writeFile(kubeconfig, proxyKubeconfig(serving.url), { mode: 0o600 })
    return await runCommand(command.exec, { ...process.env, MTLS_PROXY_URL: serving.url, KUBECONFIG: kubeconfig })
  } finally {
    await rm(folder, { recursive: true, force: true })
    await serving.stop()
  }
}

function runCommand ([file, ...args]: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(file!, args, { stdio: 'inherit', env })
    // Ctrl-C reaches the command from the terminal too; systemd's and kill's signals reach only us.
    const forward = (signal: NodeJS.Signals) => { child.kill(signal) }
    for (const signal of FORWARDED_SIGNALS) process.on(signal, forward)
    const done = (status: number) => {
      for (const signal of FORWARDED_SIGNALS) process.off(signal, forward)
      resolve(status)
    }
    child.once('error', (err: NodeJS.ErrnoException) => {
      process.stderr.write(`mtls-proxy: cannot run ${file}: ${err.code === 'ENOENT' ? 'command not found' : err.message}\n`)
      // As a shell says it: 127 for a command not found, 126 for one found but not runnable.
      done(err.code === 'ENOENT' ? 127 : 126)
    })
    child.once('exit', (code, signal) => done(signal ? 128 + (constants.signals[signal] ?? 0) : code ?? 1))
  })
}
