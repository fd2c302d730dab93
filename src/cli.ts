#!/usr/bin/env node
// The only place that listens, handles signals and exits.
import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import type { Logger } from 'pino'
import { helpText, isLoopback, loadConfig, type Config } from './config.js'
import { clientIdentity, loadCredentials, type CredentialBundle } from './credentials.js'
import { probeServerCertificate } from './server-probe.js'
import { describeUpstreamError } from './upstream-error.js'
import { upstreamTlsOptions } from './upstream.js'
import { UsageError } from './errors.js'
import { createLogger } from './logger.js'
import { listenUnixSocket } from './listen.js'
import { VERSION } from './version.js'

const LISTEN_ERRORS: Record<string, string> = {
  EADDRINUSE: 'address already in use (is another proxy running? choose another --port)',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'this machine has no such address',
}

function statusUrl (app: { statusApp: { server: { address(): unknown } } }): string {
  const a = app.statusApp.server.address() as { address: string; port: number }
  return `http://${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`
}

function fail (message: string): never {
  process.stderr.write(`mtls-proxy: ${message}\n`)
  process.exit(2)
}

/**
 * One handshake before serving. A server that --cacert does not vouch for, or whose name does not
 * match, is a configuration mistake; one that is merely unreachable is not: a sidecar may start
 * before the network does, so the proxy serves, not ready, and keeps trying.
 */
async function checkUpstream (config: Config, credentials: CredentialBundle, logger: Logger): Promise<void> {
  try {
    await probeServerCertificate(upstreamTlsOptions({ ...config, url: config.upstream }, credentials), config.connectTimeoutMs)
  } catch (err) {
    const failure = describeUpstreamError(err, config.upstream, config.tlsServerName)
    if (failure.misconfigured) throw new UsageError(failure.message)
    logger.warn({ upstream: config.upstream.origin, reason: failure.message }, `upstream not reachable yet (${failure.message}); serving anyway, not ready until it is`)
  }
}

async function main (argv: string[]): Promise<void> {
  const command = loadConfig(argv)
  if (command.action === 'help') {
    process.stdout.write(helpText(VERSION))
    return
  }
  if (command.action === 'version') {
    // The version first, alone, for scripts; then what it runs on, as `kubectl version --client` tells.
    process.stdout.write(`${VERSION} (Node.js ${process.version}, ${process.platform}/${process.arch})\n`)
    return
  }
  const { config } = command
  const credentials = await loadCredentials(await config.credentialSources())
  const logger = createLogger({ level: config.logLevel, pretty: process.stdout.isTTY === true })
  for (const warning of command.warnings) logger.warn(warning)
  if (!config.unixSocket && !isLoopback(config.address)) {
    logger.warn({ address: config.address }, `listening on non-loopback address ${config.address}: anyone who can reach it acts as ${clientIdentity(credentials)}`)
    if (config.token !== undefined && !config.https) {
      logger.warn('callers send the --token-file token in clear text over the network, and kubectl will not send it over http:// at all: add --listen-cert and --listen-key to serve HTTPS')
    }
  }
  for (const warning of credentials.warnings) logger.warn(warning)
  if (config.insecureSkipTlsVerify) {
    logger.warn(`--insecure-skip-tls-verify: the API server's certificate is NOT verified; anyone between here and ${config.upstream.host} can read and answer every request made as ${clientIdentity(credentials)}`)
  }
  await checkUpstream(config, credentials, logger)
  const app = await buildApp(config, { logger, credentials })
  try {
    if (config.unixSocket) {
      await listenUnixSocket(app, config.unixSocket, (reason) => {
        logger.error({ unixSocket: config.unixSocket }, reason)
        app.readiness.markBroken(reason)
      })
    } else await app.listen({ host: config.address, port: config.port })
  } catch (err) {
    await app.close()
    if (err instanceof UsageError) throw err
    const code = (err as NodeJS.ErrnoException).code ?? ''
    const where = config.unixSocket ?? `${config.address}:${config.port}`
    throw new UsageError(`cannot listen on ${where}: ${LISTEN_ERRORS[code] ?? (err as Error).message}`)
  }
  if (config.statusAddress) {
    const { host: statusHost, port: statusPort } = config.statusAddress
    try {
      await app.statusApp.listen({ host: statusHost, port: statusPort })
    } catch (err) {
      await app.close()
      const code = (err as NodeJS.ErrnoException).code ?? ''
      throw new UsageError(`cannot listen on --status-address ${statusHost}:${statusPort}: ${LISTEN_ERRORS[code] ?? (err as Error).message}`)
    }
  }
  process.on('SIGHUP', () => {
    logger.info('SIGHUP: reloading certificates')
    void app.reloader.reload('SIGHUP')
  })
  // SIGHUP reloads certificates (close-with-grace would treat it as a stop).
  closeWithGrace({ delay: config.shutdownTimeoutMs + 5_000, logger, skip: ['SIGHUP'] }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'fatal error, shutting down')
    else logger.info({ signal }, `${signal}: shutting down (waiting up to ${config.shutdownTimeoutMs / 1000} s for requests in flight)`)
    await app.close()
    logger.info('stopped')
    // Lines are written asynchronously; close-with-grace exits next, and none may be cut off.
    await new Promise<void>((resolve) => logger.flush(() => resolve()))
  })
  const address = app.server.address()
  const port = typeof address === 'object' && address ? address.port : config.port
  const host = config.address.includes(':') ? `[${config.address}]` : config.address
  const listen = config.unixSocket ? `unix:${config.unixSocket}` : `${config.https ? 'https' : 'http'}://${host}:${port}`
  logger.info({
    listen,
    ...(config.statusAddress ? { status: statusUrl(app) } : {}),
    upstream: config.upstream.href,
    identity: clientIdentity(credentials),
    certificateNotAfter: credentials.notAfter.toISOString(),
  }, `serving ${listen}, forwarding to ${config.upstream.origin} as ${clientIdentity(credentials)}`)
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError) fail(err.message)
  process.stderr.write(`mtls-proxy: unexpected error: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
