// The file-set source: flags, environment and config file first, a kubeconfig's context filling the
// gaps, its exec plugin run when its credential is due; a change is any of those files rewritten.
import { UsageError } from '../util/errors.js'
import { watchFiles } from '../util/file-watch.js'
import { missingSetting } from '../settings/options.js'
import { loadBundle } from './bundle.js'
import { ExecCredentials } from './exec.js'
import { readKubeconfig, type ExecConfig, type KubeconfigCredentials } from './kubeconfig.js'
import { proxyFor, withoutUserinfo } from '../upstream/connect-proxy.js'
import type { CredentialSource, FileSetSpec, PemSource, ResolvedSources, ServerEndpoint, SourceDeps, TokenSource } from './source.js'

export function fileSetSource (spec: FileSetSpec, deps: SourceDeps = {}): CredentialSource {
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
      // A client certificate or a token the settings give replaces the kubeconfig user's plugin, as kubectl's flags do.
      const execConfig = spec.cert || spec.token ? undefined : kube?.exec
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
export function checkComplete (spec: FileSetSpec): void {
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

function resolveSources (spec: FileSetSpec, kube: KubeconfigCredentials | undefined, plugin: FromPlugin | undefined): ResolvedSources {
  const ca = spec.ca ?? kube?.ca
  const pluginPem = (pem: string | undefined, what: string): PemSource | undefined =>
    pem === undefined ? undefined : { kind: 'inline', pem, label: `${what} from ${plugin!.config.label}` }
  // A client certificate given as flags replaces the kubeconfig user's, exec plugin included, as kubectl's flags do.
  // A token given so replaces the user's certificate too (kubectl would send both, and the API server would
  // take the certificate's identity): the proxy acts as the identity asked for, never a stronger one beside it.
  const fromUser = spec.token === undefined
  const cert = spec.cert ?? (fromUser ? pluginPem(plugin?.certPem, 'the client certificate') ?? kube?.cert : undefined)
  const key = spec.key ?? (fromUser ? pluginPem(plugin?.keyPem, 'the client key') ?? kube?.key : undefined)
  const token: TokenSource | undefined = spec.token ?? (plugin?.token !== undefined
    ? { kind: 'inline', token: plugin.token, label: `the token from ${plugin.config.label}` }
    : kube?.token)
  if (!ca && !spec.insecureSkipTlsVerify && kube?.insecureSkipTlsVerify !== true) throw missingSetting('cacert')
  if (!cert && !token) throw new UsageError(`${missingSetting('cert').message}; or, for a bearer token, --upstream-token-file FILE`)
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
    tokenFrom: plugin?.token !== undefined ? plugin.config.label : undefined,
    kubeconfigUser: kube && (cert ? cert === kube.cert : token === kube.token) ? kube.user : undefined,
    passphraseFile,
    listener,
    context: kube?.context,
    currentContext: kube?.currentContext,
    watch,
    poll: fileOf(token),
  }
}

/** The API server the settings and the kubeconfig name, and how it is reached and checked: what credentials are bound to. */
export function serverEndpoint (spec: FileSetSpec, kube: KubeconfigCredentials | undefined): ServerEndpoint {
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
