// Exec credential plugins (client.authentication.k8s.io v1 and v1beta1), run the way client-go runs
// them: the command with its args and env, KUBERNETES_EXEC_INFO saying we are not interactive (and
// the cluster, when asked), stdout an ExecCredential, stderr for people. The credential is kept and
// handed out again until it is due for renewal, so a reload for another file's sake runs nothing.
import { X509Certificate } from 'node:crypto'
import type { Logger } from 'pino'
import { UsageError } from '../util/errors.js'
import { childEnvironment } from '../process/child-environment.js'
import type { ExecConfig } from './kubeconfig.js'

// An ExecCredential is a few KB (a certificate chain and key at most); stderr is for a few lines.
const MAX_STDOUT_BYTES = 1024 * 1024
const MAX_STDERR_LINES = 50
const MAX_STDERR_LINE = 1000
// client-go sets no limit; a plugin that hangs would hold every later reload, so one is set here.
const PLUGIN_TIMEOUT_MS = 60_000
// Renewal comes once 80 % of a credential's life has passed, and never later than this before it ends.
const RENEW_SHARE = 0.8
const RENEW_MARGIN_MS = 5_000
// A plugin that handed back the credential it gave before is asked again no sooner than this.
const UNCHANGED_RETRY_MS = 10_000
// A failed run is reported again, without running, for this long (the store retries every 10 s).
const FAILURE_HOLD_MS = 5_000
// After the plugin exits, its output is read for at most this long: a process it left in the
// background may hold the pipes open for ever.
const DRAIN_AFTER_EXIT_MS = 500
// A plugin still running when the proxy stops is asked to end (SIGTERM to its process group), and
// killed with whatever it started once this has passed.
const STOP_GRACE_MS = 2_000

/** A plugin's failure: one line naming the plugin. Not worth retrying at once, unlike a half-written file. */
export class PluginError extends UsageError {
  override name = 'PluginError'
}

export interface ExecResult {
  certPem?: string
  keyPem?: string
  token?: string
  /** as the plugin said (expirationTimestamp); undefined: until the server refuses it */
  expiresAt?: Date
  /** when to run the plugin again */
  refreshAt?: Date
}

/** When a credential obtained at `obtained` and ending at `expires` should be replaced. */
export function renewalTime (obtained: Date, expires: Date): Date {
  const life = expires.getTime() - obtained.getTime()
  const margin = Math.max(life * (1 - RENEW_SHARE), Math.min(life / 2, RENEW_MARGIN_MS))
  return new Date(expires.getTime() - Math.max(margin, 0))
}

/** The last credential a plugin gave, handed out until due. */
export class ExecCredentials {
  readonly #logger: Logger | undefined
  /** plugins running now, each with what ends its process group */
  readonly #running = new Set<() => Promise<void>>()
  #stopped = false
  #key: string | undefined
  #result: ExecResult | undefined
  #failure: { key: string; at: number; error: unknown } | undefined

  constructor (logger: Logger | undefined) {
    this.#logger = logger
  }

  /**
   * The credential in hand if still good and not due; else the plugin's new one. A failure throws
   * PluginError, and is thrown again without a run for a few seconds: reloads for other files'
   * sake must not run a failing plugin in a loop.
   */
  async get (config: ExecConfig, now: Date, renew: boolean): Promise<ExecResult> {
    const key = JSON.stringify(config)
    const held = key === this.#key ? this.#result : undefined
    if (!renew && held && (held.refreshAt === undefined || now < held.refreshAt)) return held
    const failed = this.#failure
    if (!renew && failed?.key === key && now.getTime() - failed.at < FAILURE_HOLD_MS) throw failed.error
    if (this.#stopped) throw new PluginError(`${config.label}: not run, mtls-proxy is stopping`)
    let result: ExecResult
    try {
      result = await runPlugin(config, this.#logger, now, this.#running)
    } catch (error) {
      this.#failure = { key, at: now.getTime(), error }
      throw error
    }
    this.#failure = undefined
    // Many plugins hand out the credential they hold until it expires: ask again later, not in a loop.
    if (held && sameCredential(held, result) && result.refreshAt && result.expiresAt) {
      const later = Math.max(result.refreshAt.getTime(), now.getTime() + UNCHANGED_RETRY_MS)
      result.refreshAt = new Date(Math.min(later, result.expiresAt.getTime()))
    }
    this.#key = key
    this.#result = result
    return result
  }

  /** Stopping: no plugin runs any more, and those running are ended (TERM, then KILL after a grace), which it waits for. */
  async stop (): Promise<void> {
    this.#stopped = true
    await Promise.all([...this.#running].map((end) => end()))
  }
}

function sameCredential (a: ExecResult, b: ExecResult): boolean {
  return a.token === b.token && a.certPem === b.certPem && a.keyPem === b.keyPem && a.expiresAt?.getTime() === b.expiresAt?.getTime()
}

function execInfo (config: ExecConfig): string {
  return JSON.stringify({
    apiVersion: config.apiVersion,
    kind: 'ExecCredential',
    spec: { interactive: false, ...(config.provideClusterInfo ? { cluster: config.cluster } : {}) },
  })
}

function oneLine (text: string): string {
  return text.replace(/\s+/g, ' ').trim()
}

/** Runs the plugin once; while it runs, `running` holds what ends it. */
async function runPlugin (
  config: ExecConfig, logger: Logger | undefined, now: Date, running: Set<() => Promise<void>>
): Promise<ExecResult> {
  if (config.interactiveMode === 'Always') {
    throw new PluginError(`${config.label} needs an interactive terminal (interactiveMode: Always); mtls-proxy runs plugins without one, as a service: use a plugin mode that needs no prompt`)
  }
  // Loaded here: most proxies run no plugin, and node:child_process cost ~5 ms of every start on Node.js 24.
  const { spawn } = await import('node:child_process')
  const { stdout, code, signal } = await new Promise<{ stdout: Buffer; code: number | null; signal: NodeJS.Signals | null }>(
    (resolve, reject) => {
      // A process group of its own, so that a plugin that hangs is killed with whatever it started.
      const child = spawn(config.command, config.args, {
        // The proxy's environment without its secrets (another cluster's plugin may be a third party's), and the plugin's own.
        env: {
          ...childEnvironment(),
          ...Object.fromEntries(config.env.map((e) => [e.name, e.value])),
          KUBERNETES_EXEC_INFO: execInfo(config),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      })
      const signalGroup = (signal: NodeJS.Signals) => {
        try {
          process.kill(-child.pid!, signal)
        } catch { /* gone already */ }
      }
      const killGroup = () => signalGroup('SIGKILL')
      const timer = setTimeout(killGroup, PLUGIN_TIMEOUT_MS)
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      // Asked to, at a stop: the plugin may tidy up, then whatever is left of its group is killed.
      const end = async () => {
        signalGroup('SIGTERM')
        const grace = setTimeout(killGroup, STOP_GRACE_MS)
        await exited
        clearTimeout(grace)
        killGroup()
      }
      if (child.pid !== undefined) running.add(end)
      child.once('exit', () => running.delete(end))
      const chunks: Buffer[] = []
      let size = 0
      child.stdout.on('data', (chunk: Buffer) => {
        size += chunk.length
        if (size > MAX_STDOUT_BYTES) killGroup()
        else chunks.push(chunk)
      })
      let lines = 0
      let partial = ''
      const say = (line: string) => {
        if (line.trim() === '' || lines++ >= MAX_STDERR_LINES) return
        logger?.warn({ plugin: config.command }, `exec plugin: ${line.slice(0, MAX_STDERR_LINE)}`)
      }
      child.stderr.setEncoding('utf8')
      child.stderr.on('data', (text: string) => {
        const parts = (partial + text).split('\n')
        partial = parts.pop()!.slice(-MAX_STDERR_LINE)
        parts.forEach(say)
      })
      child.stdout.on('error', () => {})
      child.stderr.on('error', () => {})
      child.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer)
        if (err.code === 'ENOENT') {
          reject(new PluginError(`${config.label}: command '${config.command}' not found` +
            (config.installHint ? `; ${oneLine(config.installHint)}` : '')))
        } else if (err.code === 'EACCES') {
          reject(new PluginError(`${config.label}: command '${config.command}' cannot be run (permission denied)`))
        } else reject(new PluginError(`${config.label}: cannot run '${config.command}': ${err.message}`))
      })
      let settled = false
      const settle = (code: number | null, signal: NodeJS.Signals | null) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        child.stdout.destroy()
        child.stderr.destroy()
        say(partial)
        if (size > MAX_STDOUT_BYTES) reject(new PluginError(`${config.label} wrote more than 1 MiB: not an ExecCredential`))
        else resolve({ stdout: Buffer.concat(chunks), code, signal })
      }
      child.once('close', settle)
      child.once('exit', (code, signal) => setTimeout(() => settle(code, signal), DRAIN_AFTER_EXIT_MS).unref())
    })
  if (signal) {
    throw new PluginError(`${config.label}: '${config.command}' was ended by ${signal}` +
      (signal === 'SIGKILL' ? ` (after ${PLUGIN_TIMEOUT_MS / 1000} s, or it wrote too much)` : ''))
  }
  if (code !== 0) throw new PluginError(`${config.label}: '${config.command}' exited with status ${code} (its stderr is in the log)`)
  return parseCredential(stdout.toString('utf8'), config, now)
}

function parseCredential (text: string, config: ExecConfig, now: Date): ExecResult {
  let doc: Record<string, unknown>
  try {
    doc = JSON.parse(text) as Record<string, unknown>
  } catch {
    throw new PluginError(`${config.label}: its output is not JSON; expected an ExecCredential`)
  }
  if (doc?.kind !== 'ExecCredential') {
    throw new PluginError(`${config.label}: its output is not an ExecCredential (kind '${String(doc?.kind)}')`)
  }
  if (doc.apiVersion !== config.apiVersion) {
    throw new PluginError(`${config.label}: it answered apiVersion '${String(doc.apiVersion)}', the kubeconfig asked for '${config.apiVersion}'`)
  }
  const status = (doc.status ?? {}) as Record<string, unknown>
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined)
  const token = str(status.token)
  const certPem = str(status.clientCertificateData)
  const keyPem = str(status.clientKeyData)
  if ((certPem === undefined) !== (keyPem === undefined)) {
    throw new PluginError(`${config.label}: its status has ${certPem
? 'clientCertificateData without clientKeyData'
: 'clientKeyData without clientCertificateData'}`)
  }
  if (!token && !certPem) throw new PluginError(`${config.label}: its status holds neither a token nor a client certificate`)
  let expiresAt: Date | undefined
  if (status.expirationTimestamp !== undefined) {
    expiresAt = new Date(String(status.expirationTimestamp))
    if (Number.isNaN(expiresAt.getTime())) {
      throw new PluginError(`${config.label}: expirationTimestamp '${String(status.expirationTimestamp)}' is not a time (RFC 3339)`)
    }
    if (expiresAt <= now) throw new PluginError(`${config.label} handed out a credential that expired at ${expiresAt.toISOString()}`)
  }
  let refreshAt = expiresAt && renewalTime(now, expiresAt)
  // A certificate without an expirationTimestamp is still renewed before it ends (bundle.ts checks it whole).
  if (!expiresAt && certPem) {
    const validity = certificateValidity(certPem)
    if (validity && validity.notAfter > now) refreshAt = renewalTime(validity.notBefore, validity.notAfter)
  }
  return {
    ...(certPem ? { certPem, keyPem } : {}),
    ...(token ? { token } : {}),
    ...(expiresAt ? { expiresAt } : {}),
    ...(refreshAt ? { refreshAt } : {}),
  }
}

function certificateValidity (pem: string): { notBefore: Date; notAfter: Date } | undefined {
  try {
    const cert = new X509Certificate(pem)
    return { notBefore: new Date(cert.validFrom), notAfter: new Date(cert.validTo) }
  } catch {
    return undefined
  }
}
