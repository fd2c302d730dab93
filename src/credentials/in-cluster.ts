// In a pod, as client-go's in-cluster config (and so kubectl proxy) takes it: with no kubeconfig
// anywhere and KUBERNETES_SERVICE_HOST/PORT set, the API server is https://HOST:PORT, its CA is the
// service account folder's ca.crt and the identity is the folder's token, a bound token the kubelet
// replaces about hourly (followed as a kubeconfig tokenFile is, within seconds). The namespace is
// POD_NAMESPACE, else the folder's namespace file, else `default`, as kubectl's.
import { existsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { bracketed } from '../util/addresses.js'
import { readRegularFile } from '../util/files.js'
import type { PemSource, ServiceAccount, TokenSource } from './source.js'

export const SERVICE_ACCOUNT_FOLDER = '/var/run/secrets/kubernetes.io/serviceaccount'
// A test lays out a folder of its own; a pod never sets it (private variables are stripped from every child).
export const SERVICE_ACCOUNT_FOLDER_ENV = '_MTLS_PROXY_SERVICE_ACCOUNT_DIR'

/** What the pod's environment offers, when kubectl would use it: its API server and service account. */
export interface InCluster {
  /** https://HOST:PORT, IPv6 in brackets */
  server: string
  serviceAccount: ServiceAccount
}

/**
 * The pod's service account, where kubectl would serve it: both variables set, a token file there
 * (client-go's Possible()), and none of the kubeconfig files kubectl would read exists.
 */
export function inClusterEnvironment (env: NodeJS.ProcessEnv, kubeconfigFiles: readonly string[]): InCluster | undefined {
  const host = env.KUBERNETES_SERVICE_HOST
  const port = env.KUBERNETES_SERVICE_PORT
  if (!host || !port) return undefined
  const folder = env[SERVICE_ACCOUNT_FOLDER_ENV] || SERVICE_ACCOUNT_FOLDER
  if (!isFile(join(folder, 'token')) || kubeconfigFiles.some((f) => existsSync(f))) return undefined
  return { server: `https://${bracketed(host)}:${port}`, serviceAccount: { folder, podNamespace: env.POD_NAMESPACE || undefined } }
}

function isFile (path: string): boolean {
  try {
    return statSync(path).isFile()
  } catch {
    return false
  }
}

const LABEL = 'the pod\'s service account'

/** Its CA and token, named for messages. */
export function serviceAccountFiles ({ folder }: ServiceAccount): { ca: PemSource; token: TokenSource } {
  return {
    ca: { kind: 'file', path: join(folder, 'ca.crt'), label: `${LABEL} CA` },
    token: { kind: 'file', path: join(folder, 'token'), label: `${LABEL} token` },
  }
}

// A namespace name is at most 63 characters; the file is the kubelet's, read once at start.
const MAX_NAMESPACE_BYTES = 1024

/** The namespace a pod's kubectl works in: POD_NAMESPACE, else the folder's namespace file, else `default`. */
export async function serviceAccountNamespace ({ folder, podNamespace }: ServiceAccount): Promise<string> {
  if (podNamespace) return podNamespace
  try {
    const name = (await readRegularFile(join(folder, 'namespace'), MAX_NAMESPACE_BYTES)).text.trim()
    if (name !== '') return name
  } catch { /* as kubectl: no namespace file means default */ }
  return 'default'
}

/**
 * The service account a token names (`system:serviceaccount:NS:NAME`), for the start line; read,
 * never checked: the API server decides. Anything else (an OIDC token, not a JWT): undefined.
 */
export function serviceAccountOf (token: string): string | undefined {
  const payload = token.split('.')[1]
  if (token.length > 16_384 || payload === undefined) return undefined
  try {
    const sub = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub?: unknown }).sub
    return typeof sub === 'string' && /^system:serviceaccount:[a-z0-9.-]{1,253}:[a-z0-9.-]{1,253}$/.test(sub) ? sub : undefined
  } catch {
    return undefined
  }
}
