// Where the credentials come from, as the settings describe them (plain data, nothing read yet), and
// what every source of them offers: a load (start-up and every reload run the same one), its change
// trigger, renewal and stop. A spec names its kind; each kind is a source of its own (sourceOf).
import type { Logger } from 'pino'
import type { CredentialBundle } from './bundle.js'
import type { KubeconfigChoice } from './kubeconfig.js'
import type { ProxyEnvironment } from '../upstream/connect-proxy.js'
import { fileSetSource } from './file-set.js'

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

/** Where a cluster's credentials come from, by kind. */
export type CredentialSpec = FileSetSpec

/** Files and texts the settings name, a kubeconfig filling the gaps (read on every load); the rest is given. */
export interface FileSetSpec {
  kind: 'file-set'
  kubeconfig: KubeconfigChoice | undefined
  /** --upstream; undefined: the kubeconfig's server */
  server: URL | undefined
  tlsServerName: string | undefined
  insecureSkipTlsVerify: boolean
  /** given explicitly, each beats the kubeconfig's */
  ca: PemSource | undefined
  cert: PemSource | undefined
  key: PemSource | undefined
  /** the API server's bearer token (--upstream-token-file, or the pod's service account's); beats the kubeconfig user's */
  token: TokenSource | undefined
  passphraseFile: string | undefined
  /** in a pod with no kubeconfig, as kubectl proxy there: the pod's service account is the identity */
  serviceAccount: ServiceAccount | undefined
  /** the key pair the listener serves HTTPS with; undefined: plain HTTP */
  listener: { cert: PemSource; key: PemSource } | undefined
  /** HTTPS_PROXY and NO_PROXY as the proxy was started with */
  proxyEnv: ProxyEnvironment
}

/** The pod's service account, as client-go's in-cluster config reads it. */
export interface ServiceAccount {
  /** its folder: ca.crt, token, namespace */
  folder: string
  /** POD_NAMESPACE (the downward API), which beats the folder's namespace file, as kubectl has it */
  podNamespace: string | undefined
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
  /** the exec plugin the token came from, which renews it */
  tokenFrom: string | undefined
  /** the kubeconfig user the credential in use came from (`user 'u' of context 'dev' (kubeconfig F)`); undefined: the settings gave it */
  kubeconfigUser: string | undefined
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

/** The source a spec names. */
export function sourceOf (spec: CredentialSpec, deps: SourceDeps = {}): CredentialSource {
  switch (spec.kind) {
    case 'file-set': return fileSetSource(spec, deps)
  }
}
