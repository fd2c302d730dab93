// Reads the cluster, user and context a kubeconfig names, the way kubectl does: the current
// context unless one is named, `-data` fields as base64 PEM, file paths relative to the kubeconfig.
import { dirname, resolve } from 'node:path'
import { firstLine, UsageError } from '../errors.js'
import { readRegularFile } from '../files.js'
import * as lazy from '../lazy.js'
import { describeFsError } from '../fs-errors.js'
import type { PemSource } from './source.js'

// Room for about a thousand clusters with their certificates inline.
const MAX_KUBECONFIG_BYTES = 4 * 1024 * 1024

export interface KubeconfigCredentials {
  server: string
  context: string
  ca?: PemSource
  cert?: PemSource
  key?: PemSource
  tlsServerName?: string
  insecureSkipTlsVerify: boolean
}

type Named<T> = Array<{ name?: string } & Record<string, T | undefined>>

function byName<T> (list: unknown, kind: string, name: string, file: string): T {
  const entry = Array.isArray(list) ? (list as Named<T>).find((e) => e?.name === name) : undefined
  const value = entry?.[kind]
  if (!value) throw new UsageError(`kubeconfig ${file}: no ${kind} named '${name}'`)
  return value
}

function pem (file: string, base: string, data: unknown, path: unknown, what: string): PemSource | undefined {
  if (typeof data === 'string' && data !== '') {
    return { kind: 'inline', pem: Buffer.from(data, 'base64').toString('utf8'), label: `kubeconfig ${file} ${what}-data` }
  }
  if (typeof path === 'string' && path !== '') return { kind: 'file', path: resolve(base, path), label: `kubeconfig ${file} ${what}` }
  return undefined
}

/** Read anew on every load, without holding up the event loop. */
export async function readKubeconfig (file: string, contextName?: string): Promise<KubeconfigCredentials> {
  let text: string
  try {
    text = (await readRegularFile(file, MAX_KUBECONFIG_BYTES)).text
  } catch (err) {
    throw new UsageError(`cannot read kubeconfig ${file}: ${describeFsError(err)}`)
  }
  return parseKubeconfig(text, file, contextName)
}

function parseKubeconfig (text: string, file: string, contextName: string | undefined): KubeconfigCredentials {
  let doc: Record<string, unknown>
  try {
    doc = lazy.yaml().parse(text) as Record<string, unknown>
  } catch (err) {
    throw new UsageError(`cannot read kubeconfig ${file}: ${firstLine(err)}`)
  }
  if (!doc || typeof doc !== 'object') throw new UsageError(`kubeconfig ${file} is empty or not a mapping`)
  const context = contextName ?? (doc['current-context'] as string | undefined)
  if (!context) throw new UsageError(`kubeconfig ${file} has no current-context; name one with --context`)
  const ctx = byName<{ cluster?: string; user?: string }>(doc.contexts, 'context', context, file)
  if (!ctx.cluster || !ctx.user) throw new UsageError(`kubeconfig ${file}: context '${context}' must name a cluster and a user`)
  const cluster = byName<Record<string, unknown>>(doc.clusters, 'cluster', ctx.cluster, file)
  const user = byName<Record<string, unknown>>(doc.users, 'user', ctx.user, file)
  const base = dirname(file)

  const cert = pem(file, base, user['client-certificate-data'], user['client-certificate'], 'client-certificate')
  const key = pem(file, base, user['client-key-data'], user['client-key'], 'client-key')
  if (!cert || !key) {
    const other = user.token || user.tokenFile
      ? 'a bearer token'
      : user.exec
        ? 'an exec plugin'
        : user['auth-provider'] ? 'an auth provider' : user.username ? 'a user name and password' : 'no credentials'
    throw new UsageError(`kubeconfig ${file}: user '${ctx.user}' of context '${context}' uses ${other}, not a client certificate; ` +
      'mtls-proxy needs client-certificate and client-key')
  }
  const server = cluster.server
  if (typeof server !== 'string' || server === '') throw new UsageError(`kubeconfig ${file}: cluster '${ctx.cluster}' has no server`)
  return {
    server,
    context,
    ca: pem(file, base, cluster['certificate-authority-data'], cluster['certificate-authority'], 'certificate-authority'),
    cert,
    key,
    tlsServerName: typeof cluster['tls-server-name'] === 'string' ? cluster['tls-server-name'] : undefined,
    insecureSkipTlsVerify: cluster['insecure-skip-tls-verify'] === true,
  }
}
