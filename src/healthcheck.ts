// The container's HEALTHCHECK, without curl in the image: GET /-/healthz from the proxy it belongs
// to, found by the CLI's own settings resolution: the proxy's flags (from the first process's
// command line when that is the proxy, as in a container; else this command's own), the
// MTLS_PROXY_* environment and the config file. The status listener when there is one. Exit 0 when healthy.
import { readFileSync, realpathSync } from 'node:fs'
import { request as httpRequest, type RequestOptions } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { fileURLToPath } from 'node:url'
import { bracketed } from './util/addresses.js'
import { loadConfig } from './settings/load.js'
import type { Config } from './settings/types.js'

const TIMEOUT_MS = 3_000
// The CLI of this very installation; the `mtls-proxy` bin is a link to it.
const CLI = fileURLToPath(new URL('./cli.js', import.meta.url))

/** The flags the proxy was started with, when it is this container's first process; else this command's own. */
function proxyFlags (): string[] {
  try {
    const [, script, ...flags] = readFileSync('/proc/1/cmdline', 'utf8').split('\0').filter(Boolean)
    if (script !== undefined && realpathSync(script) === realpathSync(CLI)) return flags
  } catch { /* not Linux, no access, or no such script: this command's own flags */ }
  return process.argv.slice(2)
}

// A wildcard listener is asked on loopback.
const reachable = (host: string) => (host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host)

/** Where to ask, and how. */
function healthTarget (config: Config): { https: boolean; options: RequestOptions; describe: string } {
  if (config.statusAddress) {
    const host = reachable(config.statusAddress.host)
    const { port } = config.statusAddress
    return { https: false, options: { host, port }, describe: `http://${bracketed(host)}:${port}` }
  }
  if (config.unixSocket) return { https: config.https, options: { socketPath: config.unixSocket }, describe: `unix:${config.unixSocket}` }
  const host = reachable(config.address)
  const describe = `${config.https ? 'https' : 'http'}://${bracketed(host)}:${config.port}`
  return { https: config.https, options: { host, port: config.port }, describe }
}

async function check (): Promise<string | undefined> {
  const command = loadConfig(proxyFlags())
  if (command.action !== 'run') return `the proxy's flags ask for ${command.action}, not to serve`
  if (!command.config.unixSocket && !command.config.statusAddress && command.config.port === 0) {
    return 'the proxy listens on --port 0, a port only it knows: give it a fixed --port or a --status-address to be checked'
  }
  const target = healthTarget(command.config)
  const host = target.options.host ?? 'localhost'
  const options: RequestOptions = {
    ...target.options,
    path: '/-/healthz',
    headers: { host: bracketed(host) },
    timeout: TIMEOUT_MS,
    // Our own proxy on this machine, asked for nothing secret: its certificate need not be trusted here.
    ...(target.https ? { rejectUnauthorized: false } : {}),
  }
  return await new Promise((resolve) => {
    const req = (target.https ? httpsRequest : httpRequest)(options, (res) => {
      res.resume()
      resolve(res.statusCode === 200 ? undefined : `${target.describe}/-/healthz: HTTP ${res.statusCode}`)
    })
    req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)))
    req.on('error', (err) => resolve(`${target.describe}/-/healthz: ${err.message}`))
    req.end()
  })
}

check().then((problem) => {
  if (problem) process.stderr.write(`${problem}\n`)
  process.exit(problem ? 1 : 0)
}, (err: unknown) => {
  process.stderr.write(`mtls-proxy healthcheck: ${(err as Error).message}\n`)
  process.exit(1)
})
