// mtls-proxy built in-process from real command-line flags, on port 0, with its logs captured.
import { Writable } from 'node:stream'
import type { Logger } from 'pino'
import type { App } from '../../src/app.js'
import { loadConfig } from '../../src/settings/load.js'
import type { Config } from '../../src/settings/types.js'
import { openProxy } from '../../src/process/open.js'
import type { ClientFiles } from '../../src/demo/pki.js'
import { createLogger } from '../../src/util/logger.js'
import type { Teardown } from './pki.js'

export interface RunningProxy {
  app: App
  config: Config
  port: number
  url: string
  /** every log line, parsed */
  logs: Array<Record<string, unknown>>
  /** every log line as written */
  logText: () => string
}

/** The four settings every proxy needs: where to forward, and the CA, certificate and key. */
export function clientFlags (upstreamUrl: string, files: ClientFiles): string[] {
  return ['--upstream', upstreamUrl, '--cacert', files.cacert, '--cert', files.cert, '--key', files.key]
}

/** A debug-level logger whose lines, as written, are kept for the test to read. */
export function capturedLogger (): { logger: Logger; lines: string[] } {
  const lines: string[] = []
  const destination = new Writable({
    write (chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean))
      done()
    },
  })
  return { logger: createLogger({ level: 'debug', pretty: false, destination }), lines }
}

export function proxyFlags (upstreamUrl: string, files: ClientFiles, extra: string[] = []): string[] {
  return [...clientFlags(upstreamUrl, files), '--port', '0', '--probe-interval', '0.2', ...extra]
}

export interface ProxyOptions {
  /** the clock the proxy reads, for expiry: tests move it instead of waiting for days */
  now?: () => Date
  /**
   * false: no first probe before serving, for a test that starts the proxy against an upstream it
   * means to be wrong at request time (the CLI would refuse to start)
   */
  startupCheck?: boolean
}

export async function startProxy (
  t: Teardown, upstreamUrl: string, files: ClientFiles, extra: string[] = [], options: ProxyOptions = {}
): Promise<RunningProxy> {
  return startProxyWith(t, proxyFlags(upstreamUrl, files, extra), options)
}

/** The proxy these command-line arguments describe, opened as the CLI opens it (with the clusters they name), on port 0. */
export async function startProxyWith (
  t: Teardown, args: string[], options: ProxyOptions & { env?: NodeJS.ProcessEnv } = {}
): Promise<RunningProxy> {
  const command = loadConfig(args, options.env ?? {})
  if (command.action !== 'run') throw new Error('expected a run command')
  const { config } = command
  const { logger, lines } = capturedLogger()
  const app = await openProxy(config, { logger, now: options.now, startupCheck: options.startupCheck })
  await app.listen({ host: config.address, port: 0 })
  t.teardown(() => app.close())
  const address = app.server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return {
    app,
    config,
    port,
    url: `http://127.0.0.1:${port}`,
    get logs () { return lines.map((l) => JSON.parse(l) as Record<string, unknown>) },
    logText: () => lines.join('\n'),
  }
}
