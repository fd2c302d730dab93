// How long each certificate has left, and what to say about it.
import type { X509Certificate } from 'node:crypto'
import type { Logger } from 'pino'
import type { CredentialBundle } from '../credentials/bundle.js'
import { oneLine } from '../credentials/pem.js'

export type Role = 'client' | 'ca' | 'server' | 'listener'
export type ExpiryLevel = 'ok' | 'warning' | 'critical' | 'expired'

export interface Thresholds {
  warningDays: number
  criticalDays: number
}

export interface CertificateReport {
  role: Role
  subject: string
  issuer: string
  serial: string
  notBefore: string
  notAfter: string
  daysLeft: number
  fingerprint256: string
  level: ExpiryLevel
}

const DAY_MS = 86_400_000
const RENEWED: Thresholds = { warningDays: 0, criticalDays: 0 }

const ADVICE: Record<Role, string> = {
  client: 'download a new client certificate from your cluster\'s console (or renew it) before then',
  ca: 'get the cluster\'s new CA certificate before then',
  server: 'the API server\'s certificate must be renewed by the cluster\'s operator before then',
  listener: 'put a renewed certificate in --listen-cert (and its key in --listen-key) before then; it is picked up without a restart',
}

export function reportCertificate (role: Role, cert: X509Certificate, now: Date, thresholds: Thresholds): CertificateReport {
  const notAfter = new Date(cert.validTo)
  const daysLeft = Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS * 10) / 10
  const level: ExpiryLevel = now > notAfter
    ? 'expired'
    : daysLeft < thresholds.criticalDays
      ? 'critical'
      : daysLeft < thresholds.warningDays ? 'warning' : 'ok'
  return {
    role,
    subject: oneLine(cert.subject),
    issuer: oneLine(cert.issuer),
    serial: cert.serialNumber,
    notBefore: new Date(cert.validFrom).toISOString(),
    notAfter: notAfter.toISOString(),
    daysLeft,
    fingerprint256: cert.fingerprint256,
    level,
  }
}

/** One line a person can act on: which certificate, when, how long, what to do. */
export function expiryMessage (r: CertificateReport): string {
  const which = `${r.role === 'ca' ? 'CA' : r.role} certificate ${r.subject} (serial ${r.serial})`
  if (r.level === 'expired') return `${which} expired on ${r.notAfter}; ${ADVICE[r.role].replace(' before then', '')}`
  return `${which} expires on ${r.notAfter}, ${r.daysLeft} days left: ${ADVICE[r.role]}`
}

export interface ExpiryDeps {
  logger: Logger
  now: () => Date
  /** the bundle in use now */
  bundle: () => CredentialBundle
  /** the upstream's certificate as seen in a handshake; undefined when unreachable */
  serverCertificate: () => Promise<X509Certificate | undefined>
}

/** Checks every certificate at start, on a timer and whenever asked (after a reload), and says so in the log. */
export class ExpiryMonitor {
  readonly #opts: ExpiryDeps & { thresholds: Thresholds; intervalMs: number }
  #server: X509Certificate | undefined
  #timer: NodeJS.Timeout | undefined
  #checks = 0

  constructor (settings: Thresholds & { checkIntervalMs: number }, deps: ExpiryDeps) {
    const { warningDays, criticalDays, checkIntervalMs } = settings
    this.#opts = { ...deps, thresholds: { warningDays, criticalDays }, intervalMs: checkIntervalMs }
  }

  /** Fresh for the client and CA (cheap); the server's as of the last check. */
  get reports (): CertificateReport[] {
    return this.#build()
  }

  #build (): CertificateReport[] {
    const { thresholds, now, bundle } = this.#opts
    const b = bundle()
    const at = now()
    return [
      // An exec plugin's certificate lives hours, not months, and is renewed before its end: only its expiry is news.
      ...(b.clientCertificate
        ? [reportCertificate('client', b.clientCertificate, at, b.sources.certificateFrom ? RENEWED : thresholds)]
        : []),
      ...b.caCertificates.map((ca) => reportCertificate('ca', ca, at, thresholds)),
      ...(b.listener ? [reportCertificate('listener', b.listener.certificate, at, thresholds)] : []),
      ...(this.#server ? [reportCertificate('server', this.#server, at, thresholds)] : []),
    ]
  }

  async check (): Promise<CertificateReport[]> {
    this.#server = (await this.#opts.serverCertificate().catch(() => undefined)) ?? this.#server
    const reports = this.#build()
    const { logger } = this.#opts
    for (const r of reports) {
      const fields = { certificate: r }
      if (r.level === 'expired' || r.level === 'critical') logger.error(fields, expiryMessage(r))
      else if (r.level === 'warning') logger.warn(fields, expiryMessage(r))
      else if (this.#checks === 0) {
        logger.info(fields, `${r.role === 'ca' ? 'CA' : r.role} certificate ${r.subject} valid until ${r.notAfter} (${r.daysLeft} days)`)
      }
    }
    this.#checks++
    return reports
  }

  start (): void {
    void this.check()
    this.#timer = setInterval(() => void this.check(), this.#opts.intervalMs)
    this.#timer.unref()
  }

  stop (): void {
    clearInterval(this.#timer)
  }
}
