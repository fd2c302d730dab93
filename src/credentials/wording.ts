// The credential in use, in the words of the log lines about it: a client certificate makes a
// mutual-TLS connection and comes from files; a bearer token rides on plain TLS and may come from a
// file, a kubeconfig or an exec plugin. A line says the one there is, not "certificate" of a token.
import type { X509Certificate } from 'node:crypto'
import { sourceName } from './pem.js'
import type { ResolvedSources } from './source.js'

/** What a bundle holds, as these words need it. */
export interface Held {
  sources: ResolvedSources
  clientCertificate: X509Certificate | undefined
}

/** The connection the API server sees: mutual TLS with a client certificate, else TLS with the token. */
export function connectionOf ({ clientCertificate }: Held): string {
  return clientCertificate ? 'mutual TLS' : 'TLS with the bearer token'
}

/** What a reload reads again, for its lines: `certificates` (files), or `the token`. */
export function reloadedOf ({ clientCertificate }: Held): { what: string; unchanged: string } {
  return clientCertificate
    ? { what: 'certificates', unchanged: 'certificate files unchanged' }
    : { what: 'the token', unchanged: 'token unchanged' }
}

/** How a new credential comes: the files watched, the kubeconfig watched, an exec plugin asked again, or never. */
function followed (kind: 'file' | 'inline', plugin: string | undefined, sources: ResolvedSources, token: boolean): string {
  if (plugin) return 'renewed from the exec plugin before it expires'
  if (kind === 'file') return token ? 'followed when its file changes' : 'reloaded when its files change'
  return sources.kubeconfigUser ? 'reloaded when the kubeconfig changes' : 'as given at start'
}

/**
 * The credential in use for the line that says the proxy serves, beside the identity (a certificate's
 * subject, or where the token came from): its kind, where a certificate came from (the kubeconfig's
 * user and context, a setting, an exec plugin) and how a new one is taken up. Never the token itself.
 */
export function credentialNote (held: Held): string {
  const { sources, clientCertificate } = held
  if (clientCertificate && sources.cert) {
    const from = sources.certificateFrom
      ? `from ${sources.certificateFrom}`
      : sources.kubeconfigUser ? `of ${sources.kubeconfigUser}` : `in ${sourceName(sources.cert)}`
    const how = followed(sources.cert.kind, sources.certificateFrom, sources, false)
    const token = sources.token ? ', with a bearer token' : ''
    return `the client certificate ${from}${token}; ${how}`
  }
  if (sources.token) return `a bearer token; ${followed(sources.token.kind, sources.tokenFrom, sources, true)}`
  return 'no credential'
}
