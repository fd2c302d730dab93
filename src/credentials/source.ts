// Where the credentials come from, as the settings describe them (plain data, nothing read yet),
// and the one function that reads them: flags, environment and config file first, a kubeconfig's
// context filling the gaps. Start-up and every reload run the same `load`.
import { UsageError } from '../errors.js'
import { missingSetting } from '../options.js'
import { loadBundle, type CredentialBundle } from './bundle.js'
import { readKubeconfig, type KubeconfigCredentials } from './kubeconfig.js'

/** Where one PEM comes from: a file (watched for rotation) or inline text. */
export type PemSource =
  | { kind: 'file'; path: string; label: string }
  | { kind: 'inline'; pem: string; label: string }

/** The API server and how its certificate is checked. */
export interface ServerEndpoint {
  url: URL
  /** the name checked in its certificate, when not the URL's host */
  tlsServerName: string | undefined
  insecureSkipTlsVerify: boolean
}

/** What the settings say; a kubeconfig named here is read on every load, the rest is given. */
export interface CredentialSpec {
  kubeconfig: { file: string; context: string | undefined } | undefined
  /** --upstream; undefined: the kubeconfig's server */
  server: URL | undefined
  tlsServerName: string | undefined
  insecureSkipTlsVerify: boolean
  /** given explicitly, each beats the kubeconfig's */
  ca: PemSource | undefined
  cert: PemSource | undefined
  key: PemSource | undefined
  passphraseFile: string | undefined
  /** the key pair the listener serves HTTPS with; undefined: plain HTTP */
  listener: { cert: PemSource; key: PemSource } | undefined
  /** the token callers must present (--token-file) */
  callerTokenFile: { path: string; label: string } | undefined
}

/** The files and texts one bundle was read from. */
export interface ResolvedSources {
  server: ServerEndpoint
  /** undefined only with --insecure-skip-tls-verify */
  ca: PemSource | undefined
  cert: PemSource
  key: PemSource
  passphraseFile: string | undefined
  listener: { cert: PemSource; key: PemSource } | undefined
  callerTokenFile: { path: string; label: string } | undefined
  /** files whose change means: load again */
  watch: string[]
}

/**
 * A source of credentials: a set of files (with or without a kubeconfig) today; a command (exec
 * plugin) or a token file can be another, as long as each load returns a whole, validated bundle.
 */
export interface CredentialSource {
  load: (now: Date) => Promise<CredentialBundle>
}

export function fileSetSource (spec: CredentialSpec): CredentialSource {
  return {
    load: async (now) => {
      const kube = spec.kubeconfig ? await readKubeconfig(spec.kubeconfig.file, spec.kubeconfig.context) : undefined
      return await loadBundle(resolveSources(spec, kube), now)
    },
  }
}

/** What the settings lack, before anything is read, where no kubeconfig can fill it. */
export function checkComplete (spec: CredentialSpec): void {
  if (!spec.kubeconfig) resolveSources(spec, undefined)
}

function resolveSources (spec: CredentialSpec, kube: KubeconfigCredentials | undefined): ResolvedSources {
  const ca = spec.ca ?? kube?.ca
  const cert = spec.cert ?? kube?.cert
  const key = spec.key ?? kube?.key
  if (kube?.insecureSkipTlsVerify && !spec.insecureSkipTlsVerify) {
    throw new UsageError(`kubeconfig ${spec.kubeconfig!.file} sets insecure-skip-tls-verify for context '${kube.context}'; ` +
      'mtls-proxy verifies the API server unless you also pass --insecure-skip-tls-verify')
  }
  if (!ca && !spec.insecureSkipTlsVerify) throw missingSetting('cacert')
  if (!cert) throw missingSetting('cert')
  if (!key) throw missingSetting('key')
  const server: ServerEndpoint = {
    url: spec.server ?? upstreamUrl(kube!.server, `kubeconfig ${spec.kubeconfig!.file} server`),
    tlsServerName: spec.tlsServerName ?? kube?.tlsServerName,
    insecureSkipTlsVerify: spec.insecureSkipTlsVerify,
  }
  const watch = [ca, cert, key, spec.listener?.cert, spec.listener?.key].flatMap((s) => (s?.kind === 'file' ? [s.path] : []))
  if (spec.kubeconfig) watch.push(spec.kubeconfig.file)
  if (spec.passphraseFile) watch.push(spec.passphraseFile)
  if (spec.callerTokenFile) watch.push(spec.callerTokenFile.path)
  const { passphraseFile, listener, callerTokenFile } = spec
  return { server, ca, cert, key, passphraseFile, listener, callerTokenFile, watch }
}

/** The API server's URL, checked: https, no credentials, no query. `label` says where it was given. */
export function upstreamUrl (text: string, label: string): URL {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new UsageError(`${label} '${text}' is not a URL; expected e.g. https://192.168.0.18:5443`)
  }
  if (url.protocol !== 'https:') throw new UsageError(`${label} must be an https:// URL (mutual TLS), got '${text}'`)
  if (url.username || url.password) {
    throw new UsageError(`${label} must not hold a user name or password: the client certificate is the ` +
    'identity')
  }
  if (url.search || url.hash) throw new UsageError(`${label} must not have a query or fragment, got '${text}'`)
  return url
}
