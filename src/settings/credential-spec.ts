// The settings that say where the API server and the credentials are → a CredentialSpec; nothing is read here.
import { UsageError } from '../util/errors.js'
import { clusterNameProblem } from '../admission/target.js'
import { checkComplete, upstreamUrl } from '../credentials/file-set.js'
import type { CredentialSpec, PemSource, TokenSource } from '../credentials/source.js'
import { serviceAccountFiles } from '../credentials/in-cluster.js'
import type { KubeconfigChoice } from '../credentials/kubeconfig.js'
import type { ProxyEnvironment } from '../upstream/connect-proxy.js'
import { missingSetting, type OptionName } from './options.js'
import { str } from './raw.js'
import type { Config, Environment, RawSettings, Settings, Where } from './types.js'

/** The settings that say where credentials come from; nothing is read here. */
export function credentialSpec (raw: RawSettings, where: Where, environment: Environment): CredentialSpec {
  const file = (name: OptionName): NamedFile | undefined => {
    const path = str(raw, name)
    return path === undefined ? undefined : { path, label: where(name) }
  }
  const pem = (name: 'cacert' | 'cert' | 'key'): PemSource | undefined => {
    const named = file(name)
    if (named) return { kind: 'file', ...named }
    const data = str(raw, `${name}-data`)
    return data ? { kind: 'inline', pem: pemText(data), label: where(`${name}-data`) } : undefined
  }
  const upstream = str(raw, 'upstream')
  const read = kubeconfigToRead(raw, where, environment)
  // As kubectl in a pod: no kubeconfig anywhere (environment.inCluster says so), nothing picked from one.
  const inCluster = read?.default === true && !picksFromKubeconfig(raw) ? environment.inCluster : undefined
  const kubeconfig = inCluster ? undefined : read?.choice
  if (upstream === undefined && kubeconfig === undefined && !inCluster) throw missingSetting('upstream')
  const listener = listenerPair(file('listen-cert'), file('listen-key'))
  const serviceAccount = inCluster && serviceAccountFiles(inCluster.serviceAccount)
  const tokenFile = file('upstream-token-file')
  const tokenData = str(raw, 'upstream-token-data')
  const token: TokenSource | undefined = tokenFile
    ? { kind: 'file', ...tokenFile }
    : tokenData !== undefined ? { kind: 'inline', token: tokenData.trim(), label: where('upstream-token-data') } : serviceAccount?.token
  const spec: CredentialSpec = {
    kind: 'file-set',
    kubeconfig,
    server: upstream !== undefined ? upstreamUrl(upstream, where('upstream')) : inCluster && upstreamUrl(inCluster.server, 'KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT'),
    tlsServerName: str(raw, 'tls-server-name'),
    insecureSkipTlsVerify: raw['insecure-skip-tls-verify'] === true,
    ca: pem('cacert') ?? serviceAccount?.ca,
    cert: pem('cert'),
    key: pem('key'),
    token,
    passphraseFile: str(raw, 'key-passphrase-file'),
    serviceAccount: inCluster?.serviceAccount,
    listener,
    proxyEnv: environment.proxy,
  }
  // The trap for a kubectl user: --token-file reads like kubectl's --token, and is the callers' token.
  if (!kubeconfig && !spec.cert && !spec.token && raw['token-file'] !== undefined) {
    throw new UsageError(`no credential for the API server: ${where('token-file')} is the token callers must send to mtls-proxy, never sent to the API server; give the API server's token with --upstream-token-file FILE (or MTLS_PROXY_UPSTREAM_TOKEN_DATA), or a client certificate with --cert and --key`)
  }
  // Without a kubeconfig, nothing can fill a gap later: say so now.
  checkComplete(spec)
  return spec
}

function picksFromKubeconfig (raw: RawSettings): boolean {
  return (['context', 'cluster', 'user'] as const).some((n) => str(raw, n) !== undefined)
}

/** The kubeconfig named, or (as kubectl: with neither a server nor a certificate named) the one kubectl would read (`default`), or none. */
export function kubeconfigToRead (
  raw: RawSettings, where: Where, environment: Environment
): { choice: NonNullable<CredentialSpec['kubeconfig']>; default: boolean } | undefined {
  const upstream = str(raw, 'upstream')
  const kubeconfigFile = str(raw, 'kubeconfig')
  const picked = { context: str(raw, 'context'), cluster: str(raw, 'cluster'), user: str(raw, 'user') }
  const useDefault = kubeconfigFile === undefined && upstream === undefined && str(raw, 'cert') === undefined && str(raw, 'cert-data') === undefined
  const kubeconfig = kubeconfigFile !== undefined
    ? { choice: { files: [kubeconfigFile], from: '--kubeconfig', ...picked }, default: false }
    : useDefault ? { choice: { ...environment.kubeconfig, ...picked }, default: true } : undefined
  const pickedName = (['context', 'cluster', 'user'] as const).find((n) => picked[n] !== undefined)
  if (pickedName && !kubeconfig) {
    throw new UsageError(`${where(pickedName)} picks from a kubeconfig, and none is read when --upstream or --cert is given; add --kubeconfig FILE`)
  }
  return kubeconfig
}

/** A cluster whose every setting comes from a kubeconfig context (--all-contexts' other contexts; what `mtls-proxy kubeconfig` names). */
export function kubeconfigOnly (kubeconfig: KubeconfigChoice | undefined, proxyEnv: ProxyEnvironment): CredentialSpec {
  return {
    kind: 'file-set',
    kubeconfig,
    server: undefined,
    tlsServerName: undefined,
    insecureSkipTlsVerify: false,
    ca: undefined,
    cert: undefined,
    key: undefined,
    token: undefined,
    passphraseFile: undefined,
    serviceAccount: undefined,
    listener: undefined,
    proxyEnv,
  }
}

type NamedFile = { path: string; label: string }

function listenerPair (cert: NamedFile | undefined, key: NamedFile | undefined): CredentialSpec['listener'] {
  if ((cert === undefined) !== (key === undefined)) {
    throw new UsageError('--listen-cert and --listen-key go together: the certificate the listener serves HTTPS with, and its key')
  }
  return cert && key ? { cert: { kind: 'file', ...cert }, key: { kind: 'file', ...key } } : undefined
}

/** A config file's `clusters:`, each entry's CredentialSpec; an entry's context may be of the top-level kubeconfig (in `raw`). */
export function clusterSpecs (entries: Settings['clusters'], raw: RawSettings, environment: Environment): Config['clusters'] {
  const clusters = entries.map(({ name, raw: entry, where }) => {
    const settings = { ...entry }
    const problem = clusterNameProblem(name)
    if (problem) throw new UsageError(`${where}: '${name.slice(0, 100)}' cannot be a cluster's name: ${problem}`)
    if (settings.upstream === undefined && settings.kubeconfig === undefined && settings.context === undefined) {
      throw new UsageError(`${where} ('${name}') says nowhere to forward: give upstream (with cacert, cert and key), or a context (of its own kubeconfig, or of the top-level one)`)
    }
    // A context without a kubeconfig of its own is one of the top-level kubeconfig's.
    if (settings.upstream === undefined && settings.kubeconfig === undefined && raw.kubeconfig !== undefined) {
      settings.kubeconfig = raw.kubeconfig
    }
    try {
      return { name, credentials: credentialSpec(settings, (n) => `${where} '${n}'`, environment) }
    } catch (err) {
      if (!(err instanceof UsageError)) throw err
      // A message that names the entry's key (`clusters[0] (config file F) 'upstream' must be…`) names the entry once.
      const message = err.message.startsWith(`${where} '`) ? err.message.slice(where.length + 1) : err.message
      throw new UsageError(`${where} ('${name}'): ${message}`)
    }
  })
  const names = new Set<string>()
  for (const { name } of clusters) {
    if (names.has(name)) throw new UsageError(`two clusters are named '${name}' in the config file's clusters:; each needs its own name`)
    names.add(name)
  }
  return clusters
}

/** PEM text as is; anything else is taken as base64 of PEM (how Secrets often arrive in env). */
function pemText (value: string): string {
  return value.includes('-----BEGIN') ? value : Buffer.from(value, 'base64').toString('utf8')
}
