// `mtls-proxy [settings] -- COMMAND [ARGS…]`: the proxy on a loopback port for the life of one
// command, and for that command alone. A loopback port is open to every account of the machine, so
// the proxy serves HTTPS with a key pair made for this run and asks callers for a token made for it
// too; the command is given both: MTLS_PROXY_URL (https://127.0.0.1:PORT), MTLS_PROXY_TOKEN,
// MTLS_PROXY_CACERT (a file), and a KUBECONFIG naming the proxy with that CA and token (none of the
// proxy's own credentials), mode 0600 in a folder only this user can enter, removed afterwards with
// the kubectl cache (KUBECACHEDIR) the command is given there.
// kubectl sends a token only over HTTPS, hence the key pair. stdio is inherited, signals are passed
// on, and the command's exit status is ours (128+N when signal N ended it, 127 not found, 126 not
// runnable).
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Config } from '../settings/types.js'
import { alsoSaying } from '../settings/load.js'
import { pinClusters } from '../clusters/pins.js'
import { fsAsync } from '../util/files.js'
import { commandEnvironment } from './child-environment.js'
import { kubeconfigText, proxyKubeconfig, servedOf } from './proxy-kubeconfig.js'
import { selfSignedLoopback } from './self-signed.js'
import { signalStatus as statusOf, StoppedWhileStarting } from '../util/errors.js'
import { serve } from './serve.js'

// The run's certificate outlives any command worth running; it is never written anywhere but the command's folder.
const CERTIFICATE_DAYS = 365

/** The run's own listener key pair and callers' token, in the settings as if they had been given. */
function guarded (config: Config): { config: Config; caPem: string; token: string } {
  const { certPem, keyPem } = selfSignedLoopback('mtls-proxy for one command', CERTIFICATE_DAYS)
  const token = randomBytes(32).toString('base64url')
  const label = 'made by mtls-proxy for this command'
  return {
    config: {
      ...config,
      https: true,
      callerToken: { token },
      credentials: {
        ...config.credentials,
        listener: {
          cert: { kind: 'inline', pem: certPem, label: `the certificate ${label}` },
          key: { kind: 'inline', pem: keyPem, label: `the key ${label}` },
        },
      },
    },
    caPem: certPem,
    token,
  }
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const

/** Runs the proxy and the command; resolves with the exit status mtls-proxy should end with. */
export async function runWithProxy (command: { config: Config; warnings: string[]; exec: string[] }): Promise<number> {
  let child: ChildProcess | undefined
  let folder: string | undefined
  let early: NodeJS.Signals | undefined
  // From a terminal, Ctrl-C and a hang-up reach the whole process group, the command too: passed on
  // again, a second Ctrl-C would make many tools skip their cleanup. SIGTERM (kill, systemd) reaches
  // only us. Before the command starts, a signal means: do not start it. After it ended, while the
  // proxy drains, signals change nothing: the status is the command's.
  const fromTerminal = process.stdin.isTTY === true
  const starting = new AbortController()
  const onSignal = (signal: NodeJS.Signals) => {
    if (!child) {
      early ??= signal
      // Still reading the credentials (an exec plugin may take a minute): that ends too.
      starting.abort(signal)
    } else if (signal === 'SIGTERM' || !fromTerminal) child.kill(signal)
  }
  const removeFolder = () => {
    if (folder) rmSync(folder, { recursive: true, force: true })
    folder = undefined
  }
  // A crash of the proxy ends the command too (it would have no proxy), and leaves no kubeconfig behind.
  const fatal = (err: unknown) => {
    process.stderr.write(`mtls-proxy: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`)
    child?.kill('SIGTERM')
    removeFolder()
    process.exit(1)
  }
  for (const signal of SIGNALS) process.on(signal, onSignal)
  process.on('uncaughtException', fatal)
  process.on('unhandledRejection', fatal)
  try {
    // A start-up mistake is the usual one line and exit 2, and the command is not run.
    const { config, caPem, token } = guarded(command.config)
    // Pinned here rather than in serve(): the kubeconfig gives each cluster its context's namespace.
    const pins = await pinClusters(config).catch((err: unknown) => { throw alsoSaying(err, command.warnings) })
    const serving = await serve({ ...command, config }, undefined, { forCommand: true, stopStarting: starting.signal, pins })
      .catch((err: unknown) => { if (early && err instanceof StoppedWhileStarting) return undefined; throw err })
    if (!serving) return statusOf(early!)
    try {
      if (early) return statusOf(early)
      folder = await fsAsync.mkdtemp(join(tmpdir(), 'mtls-proxy-'))
      const env = commandEnvironment(folder, { url: serving.url, token })
      // JSON, which kubectl reads as YAML: no one reads this one but the command.
      const kubeconfig = kubeconfigText(proxyKubeconfig(serving.url, servedOf(pins, config.clusters), { caPem, token }), 'json')
      await fsAsync.writeFile(env.KUBECONFIG!, kubeconfig, { mode: 0o600 })
      await fsAsync.writeFile(env.MTLS_PROXY_CACERT!, caPem, { mode: 0o600 })
      if (early) return statusOf(early)
      return await runCommand(command.exec, env, (started) => { child = started })
    } finally {
      removeFolder()
      await serving.stop()
    }
  } finally {
    for (const signal of SIGNALS) process.off(signal, onSignal)
    process.off('uncaughtException', fatal)
    process.off('unhandledRejection', fatal)
  }
}

function runCommand ([file, ...args]: string[], env: NodeJS.ProcessEnv, started: (child: ChildProcess) => void): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(file!, args, { stdio: 'inherit', env })
    started(child)
    child.once('error', (err: NodeJS.ErrnoException) => {
      // As a shell says it: 127 for a command not found, 126 for one found but not runnable (a
      // script whose interpreter is missing fails with ENOENT too, but the file is there).
      const found = err.code !== 'ENOENT' || (file!.includes('/') && existsSync(file!))
      const why = err.code === 'ENOENT' ? (found ? 'its interpreter (#!) was not found' : 'command not found') : err.message
      process.stderr.write(`mtls-proxy: cannot run ${file}: ${why}\n`)
      resolve(found ? 126 : 127)
    })
    child.once('exit', (code, signal) => resolve(signal ? statusOf(signal) : code ?? 1))
  })
}
