// One TLS handshake with the upstream, as the proxy would make it: shows the server's
// certificate (for expiry) and, at start-up, whether --cacert and the name fit at all.
import type { X509Certificate } from 'node:crypto'
import { connect } from 'node:tls'
import type { TlsConnectOptions } from './upstream.js'

export function probeServerCertificate (tls: TlsConnectOptions, timeoutMs: number): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = connect(tls, () => {
      const cert = socket.getPeerX509Certificate()
      socket.end()
      if (cert) resolve(cert)
      else reject(new Error('the upstream presented no certificate'))
    })
    socket.setTimeout(timeoutMs, () => socket.destroy(Object.assign(new Error('TLS handshake timed out'), { code: 'UND_ERR_CONNECT_TIMEOUT' })))
    socket.on('error', reject)
  })
}
