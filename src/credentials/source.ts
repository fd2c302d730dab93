// Where the credentials come from, as the settings describe them (plain data, nothing read yet),
// and the one function that reads them: flags, environment and config file first, a kubeconfig's
// context filling the gaps, its exec plugin run when its credential is due. Start-up and every
// reload run the same `load`.
import type { Logger } from 'pino'
import { UsageError } from '../util/errors.js'
import { watchFiles } from '../util/file-watch.js'
import { missingSetting } from '../settings/options.js'
import { loadBundle, type CredentialBundle } from './bundle.js'
import { ExecCredentials } from './exec.js'
import { readKubeconfig, type ExecConfig, type KubeconfigChoice, type KubeconfigCredentials } from './kubeconfig.js'
import { proxyFor, withoutUserinfo, type ProxyEnvironment } from '../upstream/connect-proxy.js'

/** Where one PEM comes from: a file (watched for rotation) or inline text. */
export type PemSource =
  | { kind: 'file'; path: string; label: string }
  | { kind: 'inline'; pem: string; label: string }

/** A bearer token for the API server: inline, or a file read again when it changes. */
export type TokenSource =
  | { kind: 'inline'; token: string; label: string }
  | { kind: 'file'; path: string; label: string }

/** The API server and how its certificate is checked. */
export interface ServerEndpoint {
  url: URL
  /** the name checked in its certificate, when not the URL's host */
  tlsServerName: string | undefined
  insecureSkipTlsVerify: boolean
  /** an HTTP CONNECT proxy on the way (kubeconfig proxy-url, else HTTPS_PROXY unless NO_PROXY) */
  proxy: URL | undefined
  /** kubeconfig disable-compression: ask the server for no gzip */
  disableCompression: boolean
  /** the kubeconfig cluster entry it was read from; undefined: the settings name it */
  kubeconfigCluster: string | undefined
}

/** What the settings say; a kubeconfig named here is read on every load, the rest is given. */
export interface CredentialSpec {
  kubeconfig: KubeconfigChoice | undefined
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
  /** HTTPS_PROXY and NO_PROXY as the proxy was started with */
  proxyEnv: ProxyEnvironment
}

/** The files and texts one bundle was read from. */
export interface ResolvedSources {
  server: ServerEndpoint
  /** undefined only with --insecure-skip-tls-verify */
  ca: PemSource | undefined
  /** undefined: no client certificate (a token alone) */
  cert: PemSource | undefined
  key: PemSource | undefined
  token: TokenSource | undefined
  /** when an exec plugin's credential stops being valid, as it said */
  expiresAt: Date | undefined
  /** when to run the exec plugin again */
  refreshAt: Date | undefined
  /** the exec plugin the client certificate came from, which renews it: names it in messages */
  certificateFrom: string | undefined
  passphraseFile: string | undefined
  listener: { cert: PemSource; key: PemSource } | undefined
  /** the kubeconfig context the credentials were read from, when they were */
  context: string | undefined
  /** the kubeconfig's current-context when they were read (it may have moved on from `context`) */
  currentContext: string | undefined
  /** files whose change means: load again */
  watch: string[]
  /** token files, polled as well: a change is in use within seconds even where folder events never come */
  poll: string[]
}

export interface LoadOptions {
  /** run an exec plugin again even if its credential is not due (after the upstream answered 401) */
  renew?: boolean
}

/**
 * A source of credentials: each load returns a whole, validated bundle. `renewable`: a load with
 * `renew` can bring a new credential when the upstream refuses the one in use. Each source knows what
 * a change of its credentials looks like (files rewritten, a token replaced) and says so to `watch`'s
 * caller, who loads again.
 */
export interface CredentialSource {
  load: (now: Date, options?: LoadOptions) => Promise<CredentialBundle>
  readonly renewable: () => boolean
  /** calls `changed` (with what changed, for the log) whenever what `current` was read from may have changed; returns what stops it */
  watch: (current: CredentialBundle, changed: (trigger: string) => void, logger: Logger) => () => void
  /** stopping: an exec plugin running now is ended (TERM, then KILL), and none runs again; resolves once it has */
  close: () => Promise<void>
}

export interface SourceDeps {
  /** where an exec plugin's stderr goes */
  logger?: Logger
}

export function fileSetSource (spec: CredentialSpec, deps: SourceDeps = {}): CredentialSource {
  const exec = new ExecCredentials(deps.logger)
  let usesExec = false
  /** the current-context last told of, once it moved on from the one kept */
  let toldOf: string | undefined
  return {
    load: async (now, options = {}) => {
      const kube = spec.kubeconfig ? await readKubeconfig(spec.kubeconfig) : undefined
      if (spec.kubeconfig?.pinned && kube && kube.currentContext !== kube.context && kube.currentContext !== toldOf) {
        toldOf = kube.currentContext
        const now = kube.currentContext ?? ''
        deps.logger?.warn({ context: kube.context, currentContext: kube.currentContext },
          `the kubeconfig's current-context is now '${now}'; mtls-proxy keeps serving context '${kube.context ?? ''}', which it started with (as kubectl proxy does): a restart follows the new one`)
      }
      const execConfig = spec.cert ? undefined : kube?.exec
      usesExec = execConfig !== undefined
      const fromPlugin = execConfig ? await exec.get(execConfig, now, options.renew === true) : undefined
      return await loadBundle(resolveSources(spec, kube, fromPlugin && { config: execConfig!, ...fromPlugin }), now)
    },
    renewable: () => usesExec,
    // Every file the bundle was read from (kubeconfigs included): their folders watched, token files polled.
    watch: (current, changed, logger) => watchFiles(current.sources, () => changed('file change'), logger, 'the certificates'),
    close: () => exec.stop(),
  }
}

/** What the settings lack, before anything is read, where no kubeconfig can fill it. */
export function checkComplete (spec: CredentialSpec): void {
  if (!spec.kubeconfig) resolveSources(spec, undefined, undefined)
}

interface FromPlugin {
  config: ExecConfig
  certPem?: string
  keyPem?: string
  token?: string
  expiresAt?: Date
  refreshAt?: Date
}

function resolveSources (spec: CredentialSpec, kube: KubeconfigCredentials | undefined, plugin: FromPlugin | undefined): ResolvedSources {
  const ca = spec.ca ?? kube?.ca
  const pluginPem = (pem: string | undefined, what: string): PemSource | undefined =>
    pem === undefined ? undefined : { kind: 'inline', pem, label: `${what} from ${plugin!.config.label}` }
  // A client certificate given as flags replaces the kubeconfig user's, exec plugin included, as kubectl's flags do.
  const cert = spec.cert ?? pluginPem(plugin?.certPem, 'the client certificate') ?? kube?.cert
  const key = spec.key ?? pluginPem(plugin?.keyPem, 'the client key') ?? kube?.key
  const token: TokenSource | undefined = plugin?.token !== undefined
    ? { kind: 'inline', token: plugin.token, label: `the token from ${plugin.config.label}` }
    : kube?.token
  if (!ca && !spec.insecureSkipTlsVerify && kube?.insecureSkipTlsVerify !== true) throw missingSetting('cacert')
  if (!cert && !token) throw missingSetting('cert')
  if (cert && !key) throw missingSetting('key')
  if (key && !cert) throw missingSetting('cert')
  const server = serverEndpoint(spec, kube)
  const fileOf = (s: PemSource | TokenSource | undefined) => (s?.kind === 'file' ? [s.path] : [])
  const watch = [ca, cert, key, token, spec.listener?.cert, spec.listener?.key].flatMap(fileOf)
  if (kube) watch.push(...kube.files)
  if (spec.passphraseFile) watch.push(spec.passphraseFile)
  const { passphraseFile, listener } = spec
  return {
    server,
    ca,
    cert,
    key,
    token,
    expiresAt: plugin?.expiresAt,
    refreshAt: plugin?.refreshAt,
    certificateFrom: !spec.cert && plugin?.certPem !== undefined ? plugin.config.label : undefined,
    passphraseFile,
    listener,
    context: kube?.context,
    currentContext: kube?.currentContext,
    watch,
    poll: fileOf(token),
  }
}

/** The API server the settings and the kubeconfig name, and how it is reached and checked: what credentials are bound to. */
export function serverEndpoint (spec: CredentialSpec, kube: KubeconfigCredentials | undefined): ServerEndpoint {
  const url = spec.server ?? upstreamUrl(kube!.server, `kubeconfig ${kube!.files.join(', ')} server`)
  return {
    url,
    tlsServerName: spec.tlsServerName ?? kube?.tlsServerName,
    // As kubectl: the kubeconfig's insecure-skip-tls-verify is honoured (and warned about at every start, process/serve.ts).
    insecureSkipTlsVerify: spec.insecureSkipTlsVerify || kube?.insecureSkipTlsVerify === true,
    proxy: proxyFor(url, kube?.proxyUrl, spec.proxyEnv),
    disableCompression: kube?.disableCompression === true,
    kubeconfigCluster: kube?.cluster,
  }
}

/** The API server's URL, checked: https, no credentials, no query. `label` says where it was given. */
export function upstreamUrl (text: string, label: string): URL {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new UsageError(`${label} '${withoutUserinfo(text)}' is not a URL; expected e.g. https://192.168.0.18:5443`)
  }
  if (url.protocol !== 'https:') throw new UsageError(`${label} must be an https:// URL (mutual TLS), got '${withoutUserinfo(text)}'`)
  if (url.username || url.password) {
    throw new UsageError(`${label} must not hold a user name or password: the client certificate is the identity`)
  }
  if (url.search || url.hash) throw new UsageError(`${label} must not have a query or fragment, got '${withoutUserinfo(text)}'`)
  return url
}
