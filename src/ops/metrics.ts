// Prometheus metrics, one registry per app instance (so tests can build many apps in one process).
// Certificate metrics follow x509-certificate-exporter's names, so existing alert rules apply.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { CertificateReport } from '../clusters/expiry.js'

export interface RequestRecord {
  method: string
  url: string
  status: number
  /** seconds */
  duration: number
  bytesIn: number
  bytesOut: number
  upgrade?: string
  aborted?: boolean
  error?: string
  /** the cluster it was for ('' when it named none that is served) */
  cluster?: string
}

/** A certificate of one cluster's. */
export type ClusterCertificate = CertificateReport & { cluster: string }

export interface MetricsSources {
  openWatches: () => number
  openTunnels: () => number
  certificates: () => ClusterCertificate[]
}

export interface MetricsOptions {
  /** Node process metrics (event loop, memory, …); default on */
  processMetrics?: boolean
  /** what /-/metrics serves instead of this process's registry: under --workers, every worker's, summed by the primary */
  exposition?: () => Promise<string>
}

export class Metrics {
  readonly registry = new Registry()
  readonly #exposition: () => Promise<string>
  readonly #requests: Counter<'method' | 'code' | 'cluster'>
  readonly #duration: Histogram<'method'>
  readonly #bytesIn: Counter
  readonly #bytesOut: Counter
  readonly #upstreamErrors: Counter<'cause' | 'cluster'>
  readonly #reloads: Counter<'outcome' | 'cluster'>
  readonly #lastReload: Gauge<'cluster'>
  /** requests being answered now: a plain count on every request's path, read into its gauge when scraped */
  inFlight = 0

  constructor (sources: MetricsSources, { processMetrics = true, exposition }: MetricsOptions = {}) {
    const registers = [this.registry]
    this.#exposition = exposition ?? (() => this.registry.metrics())
    this.#requests = new Counter({
      name: 'mtls_proxy_requests_total',
      help: 'Requests answered, by method, status code (101 for a tunnel) and cluster',
      labelNames: ['method', 'code', 'cluster'],
      registers
    })
    this.#duration = new Histogram({
      name: 'mtls_proxy_request_duration_seconds',
      help: 'Time from request to the end of the response (a watch or tunnel counts its whole life)',
      labelNames: ['method'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600],
      registers,
    })
    // Read when scraped: these hold no state of their own.
    const gauge = (name: string, help: string, value: () => number) =>
      new Gauge({ name, help, registers, collect () { this.set(value()) } })
    gauge('mtls_proxy_requests_in_flight', 'Requests being answered now, watches included (tunnels: mtls_proxy_open_tunnels)',
      () => this.inFlight)
    this.#bytesIn = new Counter({
      name: 'mtls_proxy_received_bytes_total', help: 'Bytes received from clients, headers included', registers,
    })
    this.#bytesOut = new Counter({ name: 'mtls_proxy_sent_bytes_total', help: 'Bytes sent to clients, headers included', registers })
    this.#upstreamErrors = new Counter({
      name: 'mtls_proxy_upstream_errors_total',
      help: 'Requests that failed on the way to the API server, by cause and cluster',
      labelNames: ['cause', 'cluster'],
      registers,
    })
    this.#reloads = new Counter({
      name: 'mtls_proxy_certificate_reloads_total',
      help: 'Certificate reloads, by outcome (reloaded, unchanged, failed) and cluster',
      labelNames: ['outcome', 'cluster'],
      registers,
      // every worker reloads the same files: one worker's count, not their sum
      aggregator: 'max',
    })
    this.#lastReload = new Gauge({
      name: 'mtls_proxy_certificate_last_reload_success_timestamp_seconds',
      help: 'When new certificates were last put in use (Unix time), by cluster; 0 before any reload',
      labelNames: ['cluster'],
      registers,
      aggregator: 'max',
    })
    gauge('mtls_proxy_open_watches', 'Watches and followed logs streaming now', sources.openWatches)
    gauge('mtls_proxy_open_tunnels', 'exec/attach/port-forward tunnels open now', sources.openTunnels)
    const labelNames = ['role', 'subject', 'issuer', 'serial_number', 'cluster'] as const
    const labels = (r: ClusterCertificate) =>
      ({ role: r.role, subject: r.subject, issuer: r.issuer, serial_number: r.serial, cluster: r.cluster })
    const perCertificate = (name: string, help: string, value: (r: ClusterCertificate) => number) => new Gauge({
      name,
      help,
      labelNames,
      registers,
      // every worker holds the same certificates: one worker's figure, not their sum
      aggregator: 'max',
      collect () {
        this.reset()
        for (const r of sources.certificates()) this.set(labels(r), value(r))
      },
    })
    perCertificate('x509_cert_not_after', 'Certificate expiry as Unix time, for the client, each CA and the server seen in the handshake',
      (r) => Date.parse(r.notAfter) / 1000)
    perCertificate('x509_cert_not_before', 'Certificate start of validity as Unix time', (r) => Date.parse(r.notBefore) / 1000)
    perCertificate('x509_cert_expired', '1 when the certificate has expired', (r) => (r.level === 'expired' ? 1 : 0))
    if (processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'mtls_proxy_' })
  }

  /** the text /-/metrics serves */
  exposition (): Promise<string> {
    return this.#exposition()
  }

  request (r: RequestRecord): void {
    this.#requests.inc({ method: r.method, code: String(r.status), cluster: r.cluster ?? '' })
    this.#duration.observe({ method: r.method }, r.duration)
    this.#bytesIn.inc(r.bytesIn)
    this.#bytesOut.inc(r.bytesOut)
  }

  upstreamError (cause: string, cluster: string): void {
    this.#upstreamErrors.inc({ cause, cluster })
  }

  /** A cluster's series that exist before anything happens to it. */
  addCluster (cluster: string): void {
    this.#lastReload.set({ cluster }, 0)
  }

  reload (cluster: string, outcome: string, at: Date): void {
    this.#reloads.inc({ outcome, cluster })
    if (outcome === 'reloaded') this.#lastReload.set({ cluster }, at.getTime() / 1000)
  }
}
