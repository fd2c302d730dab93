#!/usr/bin/env node
// The only place that reads the command line, exits and says why. Serving is loaded only when
// asked for, so --help, --version and the --workers supervisor stay small.
import { configFromSettings, loadConfig } from './settings/load.js'
import { helpText } from './settings/help.js'
import { WORKER_ROLE_ENV } from './process/child-environment.js'
import { signalStatus, StoppedWhileStarting, UsageError } from './util/errors.js'
import { VERSION } from './version.js'

function fail (message: string): never {
  process.stderr.write(`mtls-proxy: ${message}\n`)
  process.exit(2)
}

async function main (argv: string[]): Promise<void> {
  // A worker of --workers serves what its primary read; it reads no settings of its own. Only
  // then, or with --workers, is node:cluster loaded: it costs every start ~7 ms.
  if (process.env[WORKER_ROLE_ENV] !== undefined) {
    const link = (await import('./process/workers/worker.js')).workerLink()
    if (link) {
      const { serve } = await import('./process/serve.js')
      // The primary asked it to stop before it served: that is no failure.
      await serve({ config: configFromSettings(link.settings), warnings: link.warnings }, link)
        .catch((err: unknown) => { if (err instanceof StoppedWhileStarting) process.exit(0); else throw err })
      return
    }
  }
  const command = loadConfig(argv)
  if (command.action === 'help') {
    // Wrapped to the terminal; to 80 columns in a pipe or a file.
    process.stdout.write(helpText(VERSION, process.stdout.isTTY && process.stdout.columns > 0 ? process.stdout.columns : 80))
    return
  }
  if (command.action === 'version') {
    // The version first, alone, for scripts; then what it runs on, as `kubectl version --client` tells.
    process.stdout.write(`${VERSION} (Node.js ${process.version}, ${process.platform}/${process.arch})\n`)
    return
  }
  if (command.action === 'kubeconfig') {
    const { printedKubeconfig } = await import('./process/print-kubeconfig.js')
    process.stdout.write(await printedKubeconfig(command))
    return
  }
  if (command.exec) {
    const { runWithProxy } = await import('./process/run.js')
    // The command has ended and the proxy stopped, its log flushed: nothing left is worth waiting for
    // (an expiry check's handshake to an unreachable upstream would hold the process for seconds).
    process.exit(await runWithProxy({ ...command, exec: command.exec }))
  }
  if (command.config.workers !== 1) {
    const { cpuCount } = await import('./process/workers/cores.js')
    const { underOtherCluster } = await import('./process/workers/worker.js')
    const workers = command.config.workers === 'auto' ? cpuCount() : command.config.workers
    if (workers > 1 && !underOtherCluster()) {
      process.exitCode = await (await import('./process/workers/supervisor.js')).supervise(command, workers)
      return
    }
  }
  await (await import('./process/serve.js')).serve(command)
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError) fail(err.message)
  // Stopped by a signal before serving (an exec plugin was still running, and was ended): as the signal would have.
  if (err instanceof StoppedWhileStarting) process.exit(signalStatus(err.signal))
  process.stderr.write(`mtls-proxy: unexpected error: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
