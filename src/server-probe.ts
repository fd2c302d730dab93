// One TLS handshake with the upstream, as the proxy would make it: shows the server's
// certificate (for expiry) and, at start-up, whether --cacert and the name fit at all.
import { X509Certificate } from 'node:crypto'
import { isIP } from 'node:net'
import { connect } from 'node:tls'
import type { CredentialBundle } from './credentials.js'

export interface ServerProbeOptions {
  url: URL
  serverName: string
  insecure: boolean
  timeoutMs: number
}

export function probeServerCertificate(opts: ServerProbeOptions, bundle: CredentialBundle): Promise<X509Certificate> {
  const host = opts.url.hostname.replace(/^\[|\]$/g, '')
  return new Promise((resolve, reject) => {
    const socket = connect({
      host,
      port: Number(opts.url.port || 443),
      // Checked against --tls-server-name when set, else the host, like the pooled connections (SNI takes no IP).
      servername: isIP(opts.serverName) ? undefined : opts.serverName,
      ca: bundle.caPem,
      cert: bundle.certPem,
      key: bundle.keyPem,
      rejectUnauthorized: !opts.insecure,
      ALPNProtocols: ['http/1.1'],
    }, () => {
      const raw = socket.getPeerX509Certificate()
      socket.end()
      if (raw) resolve(raw)
      else reject(new Error('the upstream presented no certificate'))
    })
    socket.setTimeout(opts.timeoutMs, () => socket.destroy(Object.assign(new Error('TLS handshake timed out'), { code: 'UND_ERR_CONNECT_TIMEOUT' })))
    socket.on('error', reject)
  })
}
