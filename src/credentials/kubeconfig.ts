// Reads the cluster, user and context the settings pick from one kubeconfig or several merged, the
// way kubectl does: $KUBECONFIG's files merged with the first to set a key winning (whole entries,
// never field by field), the current context unless one is named, --cluster and --user replacing the
// context's, `-data` fields as base64 PEM, and paths relative to the file that holds the entry.
import { homedir } from 'node:os'
import { delimiter, dirname, join, resolve } from 'node:path'
import { firstLine, UsageError } from '../util/errors.js'
import { describeFsError, readRegularFile } from '../util/files.js'
import * as lazy from '../util/lazy.js'
import type { PemSource } from './source.js'

// Room for about a thousand clusters with their certificates inline.
const MAX_KUBECONFIG_BYTES = 4 * 1024 * 1024
// As pem.ts bounds PEM files.
const MAX_CA_BYTES = 1024 * 1024

/** Which kubeconfig, and what to pick from it. */
export interface KubeconfigChoice {
  /** merged in this order; the first to set a key wins */
  files: string[]
  /** how the files were given, for messages: `--kubeconfig`, `$KUBECONFIG`, `~/.kube/config` */
  from: string
  context: string | undefined
  cluster: string | undefined
  user: string | undefined
  /** context is the current-context mtls-proxy started with, kept since (pins.ts), not one the settings named */
  pinned?: true
}

/** An exec credential plugin, as the kubeconfig configures it (client.authentication.k8s.io). */
export interface ExecConfig {
  apiVersion: string
  /** a path (resolved against the kubeconfig's folder) or a name looked up in PATH */
  command: string
  args: string[]
  env: Array<{ name: string; value: string }>
  installHint: string | undefined
  provideClusterInfo: boolean
  interactiveMode: string | undefined
  /** the cluster as KUBERNETES_EXEC_INFO shows it to the plugin, when provideClusterInfo */
  cluster: Record<string, unknown>
  /** names the plugin in messages: `exec plugin of user 'eks' (kubeconfig F)` */
  label: string
}

export interface KubeconfigCredentials {
  server: string
  ca?: PemSource
  cert?: PemSource
  key?: PemSource
  token?: { kind: 'inline'; token: string; label: string } | { kind: 'file'; path: string; label: string }
  exec?: ExecConfig
  tlsServerName?: string
  insecureSkipTlsVerify: boolean
  proxyUrl?: string
  disableCompression: boolean
  /** the context picked (undefined: --cluster and --user with no current-context) */
  context: string | undefined
  /** that context's namespace, kept in the kubeconfig that points a client at the proxy (pins.ts) */
  namespace: string | undefined
  /** the user picked, for messages: `user 'u' of context 'dev' (kubeconfig F)` */
  user: string
  /** the cluster entry picked: with the server, what a cluster's credentials are bound to */
  cluster: string
  /** the kubeconfig's current-context as it says now */
  currentContext: string | undefined
  /** every file read, to watch */
  files: string[]
}

export const EXEC_API_VERSIONS = ['client.authentication.k8s.io/v1', 'client.authentication.k8s.io/v1beta1']

/**
 * The kubeconfig files kubectl would read: $KUBECONFIG's list (empty entries skipped), else
 * ~/.kube/config. Decided once at start, from the environment the proxy was started with.
 */
export function defaultKubeconfigFiles (env: NodeJS.ProcessEnv, cwd: string): { files: string[]; from: string } {
  const list = (env.KUBECONFIG ?? '').split(delimiter).filter((f) => f !== '')
  if (list.length > 0) return { files: [...new Set(list.map((f) => resolve(cwd, f)))], from: '$KUBECONFIG' }
  const home = env.HOME || homedir()
  return { files: [join(home, '.kube', 'config')], from: '~/.kube/config' }
}

interface Entry {
  value: Record<string, unknown>
  file: string
}

interface Merged {
  currentContext: string | undefined
  clusters: Map<string, Entry>
  users: Map<string, Entry>
  contexts: Map<string, Entry>
  files: string[]
}

async function readOne (file: string, optional: boolean): Promise<Record<string, unknown> | undefined> {
  let text: string
  try {
    text = (await readRegularFile(file, MAX_KUBECONFIG_BYTES)).text
  } catch (err) {
    // kubectl skips a file of $KUBECONFIG's list that does not exist; any other failure is an error.
    if (optional && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new UsageError(`cannot read kubeconfig ${file}: ${describeFsError(err)}`)
  }
  let doc: unknown
  try {
    // Warnings off: yaml prints them to stderr, past the log and its redaction, quoting the line.
    doc = lazy.yaml().parse(text, { logLevel: 'error' })
  } catch (err) {
    throw new UsageError(`cannot read kubeconfig ${file}: ${firstLine(err)}`)
  }
  if (doc === null || doc === undefined) return {}
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new UsageError(`kubeconfig ${file} is not a mapping`)
  return doc as Record<string, unknown>
}

function addEntries (into: Map<string, Entry>, list: unknown, kind: string, file: string): void {
  if (list === undefined || list === null) return
  if (!Array.isArray(list)) throw new UsageError(`kubeconfig ${file}: '${kind}s' must be a list`)
  for (const item of list as Array<Record<string, unknown> | null>) {
    const name = item?.name
    const value = item?.[kind]
    if (typeof name !== 'string' || name === '') throw new UsageError(`kubeconfig ${file}: every entry of '${kind}s' needs a name`)
    if (into.has(name)) continue
    into.set(name, { value: value && typeof value === 'object' ? value as Record<string, unknown> : {}, file })
  }
}

async function merge (choice: KubeconfigChoice): Promise<Merged> {
  // --kubeconfig names one file that must exist; of a list, missing files are skipped.
  const optional = choice.from !== '--kubeconfig'
  const docs = await Promise.all(choice.files.map((f) => readOne(f, optional)))
  const merged: Merged = { currentContext: undefined, clusters: new Map(), users: new Map(), contexts: new Map(), files: choice.files }
  docs.forEach((doc, i) => {
    if (!doc) return
    const file = choice.files[i]!
    const current = doc['current-context']
    if (merged.currentContext === undefined && typeof current === 'string' && current !== '') merged.currentContext = current
    addEntries(merged.clusters, doc.clusters, 'cluster', file)
    addEntries(merged.users, doc.users, 'user', file)
    addEntries(merged.contexts, doc.contexts, 'context', file)
  })
  if (docs.every((d) => d === undefined)) {
    throw new UsageError(`no kubeconfig found: looked for ${choice.from} (${choice.files.join(', ')}); give --kubeconfig FILE, set KUBECONFIG, or give --upstream, --cacert, --cert and --key`)
  }
  return merged
}

function where (choice: KubeconfigChoice): string {
  return choice.files.length === 1 ? `kubeconfig ${choice.files[0]}` : `kubeconfig ${choice.from} (${choice.files.join(', ')})`
}

/** At most this many names in a message; a kubeconfig may hold hundreds. */
const NAMES_SHOWN = 20

export function listNames (names: Iterable<string>): string {
  const all = [...names]
  if (all.length === 0) return 'there are none'
  const shown = all.slice(0, NAMES_SHOWN).map((n) => `'${n}'`).join(', ')
  return `it has ${shown}${all.length > NAMES_SHOWN ? ` and ${all.length - NAMES_SHOWN} more` : ''}`
}

function entry (map: Map<string, Entry>, name: string, kind: string, choice: KubeconfigChoice, flag: string): Entry {
  const entry = map.get(name)
  if (!entry) throw new UsageError(`${where(choice)}: no ${kind} named '${name}'${flag}; ${listNames(map.keys())}`)
  return entry
}

function pem (entry: Entry, data: unknown, path: unknown, what: string): PemSource | undefined {
  if (typeof data === 'string' && data !== '') {
    return { kind: 'inline', pem: Buffer.from(data, 'base64').toString('utf8'), label: `kubeconfig ${entry.file} ${what}-data` }
  }
  if (typeof path === 'string' && path !== '') {
    return { kind: 'file', path: resolve(dirname(entry.file), path), label: `kubeconfig ${entry.file} ${what}` }
  }
  return undefined
}

const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined)

/** The context a choice picks, and what it names: no credential is read. */
export interface PickedContext {
  /** undefined: --cluster and --user with no current-context */
  context: string | undefined
  namespace: string | undefined
  cluster: string | undefined
  user: string | undefined
}

/** A kubeconfig read once: its contexts, and what any choice picks from it. */
export interface Kubeconfig {
  /** in the order its files list them */
  contexts: string[]
  currentContext: string | undefined
  pick: (choice: KubeconfigChoice) => Promise<KubeconfigCredentials>
  /** the context alone (`mtls-proxy kubeconfig` names and namespaces clusters, and reads no credential) */
  context: (choice: KubeconfigChoice) => PickedContext
}

/** Reads the files once, for several picks (a start that pins every cluster it serves). */
export async function openKubeconfig (choice: KubeconfigChoice): Promise<Kubeconfig> {
  const merged = await merge(choice)
  return {
    contexts: [...merged.contexts.keys()],
    currentContext: merged.currentContext,
    pick: (c) => pick(merged, c),
    context: (c) => pickContext(merged, c),
  }
}

/** Read anew on every load, without holding up the event loop. */
export async function readKubeconfig (choice: KubeconfigChoice): Promise<KubeconfigCredentials> {
  return pick(await merge(choice), choice)
}

function pickContext (merged: Merged, choice: KubeconfigChoice): PickedContext {
  const context = choice.context ?? merged.currentContext
  if (context === undefined) {
    if (choice.cluster === undefined || choice.user === undefined) {
      throw new UsageError(`${where(choice)} has no current-context; name one with --context (${listNames(merged.contexts.keys())})`)
    }
    return { context, namespace: undefined, cluster: choice.cluster, user: choice.user }
  }
  const named = choice.pinned
    ? ' (the current-context mtls-proxy started with)'
    : choice.context ? ' (--context)' : ' (its current-context)'
  const ctx = entry(merged.contexts, context, 'context', choice, named).value
  return { context, namespace: text(ctx.namespace), cluster: choice.cluster ?? text(ctx.cluster), user: choice.user ?? text(ctx.user) }
}

async function pick (merged: Merged, choice: KubeconfigChoice): Promise<KubeconfigCredentials> {
  const { context, namespace, cluster: clusterName, user: userName } = pickContext(merged, choice)
  const contextLabel = context ?? '(none)'
  if (!clusterName || !userName) throw new UsageError(`${where(choice)}: context '${contextLabel}' must name a cluster and a user`)
  const clusterEntry = entry(merged.clusters, clusterName, 'cluster', choice, choice.cluster ? ' (--cluster)' : '')
  const userEntry = entry(merged.users, userName, 'user', choice, choice.user ? ' (--user)' : '')
  const cluster = clusterEntry.value
  const user = userEntry.value
  const server = text(cluster.server)
  if (!server) throw new UsageError(`kubeconfig ${clusterEntry.file}: cluster '${clusterName}' has no server`)
  const ca = pem(clusterEntry, cluster['certificate-authority-data'], cluster['certificate-authority'], 'certificate-authority')
  const cert = pem(userEntry, user['client-certificate-data'], user['client-certificate'], 'client-certificate')
  const key = pem(userEntry, user['client-key-data'], user['client-key'], 'client-key')
  const who = `user '${userName}' of context '${contextLabel}' (kubeconfig ${userEntry.file})`
  if ((cert === undefined) !== (key === undefined)) {
    throw new UsageError(`${who} has a client ${cert ? 'certificate but no key' : 'key but no certificate'}; it needs both`)
  }
  // As client-go: with both, the file wins (it is how a rotating token is given).
  const token = text(user.tokenFile)
    ? { kind: 'file' as const, path: resolve(dirname(userEntry.file), user.tokenFile as string), label: `tokenFile of ${who}` }
    : text(user.token)
      ? { kind: 'inline' as const, token: user.token as string, label: `the token of ${who}` }
      : undefined
  const exec = user.exec ? execConfig(user.exec, userEntry, who, cluster, server) : undefined
  // client-go shows the plugin the CA's bytes even when the kubeconfig names a file.
  if (exec?.provideClusterInfo && ca?.kind === 'file') {
    try {
      exec.cluster['certificate-authority-data'] = Buffer.from((await readRegularFile(ca.path, MAX_CA_BYTES)).text).toString('base64')
    } catch (err) {
      throw new UsageError(`${ca.label} ${ca.path}: cannot read: ${describeFsError(err)}`)
    }
  }
  if (!cert && !token && !exec) {
    const other = user['auth-provider']
      ? `an auth-provider ('${String((user['auth-provider'] as Record<string, unknown>)?.name ?? '')}'), which kubectl no longer supports either; use its exec plugin (e.g. kubelogin)`
      : user.username || user.password ? 'a user name and password, which mtls-proxy does not send' : 'no credentials'
    throw new UsageError(`${who} has ${other}; mtls-proxy needs a client certificate, a token, a tokenFile or an exec plugin`)
  }
  const proxyUrl = text(cluster['proxy-url'])
  return {
    server,
    ca,
    cert,
    key,
    token,
    exec,
    tlsServerName: text(cluster['tls-server-name']),
    insecureSkipTlsVerify: cluster['insecure-skip-tls-verify'] === true,
    ...(proxyUrl ? { proxyUrl } : {}),
    disableCompression: cluster['disable-compression'] === true,
    context,
    namespace,
    user: who,
    cluster: clusterName,
    currentContext: merged.currentContext,
    files: merged.files,
  }
}

function execConfig (raw: unknown, entry: Entry, who: string, cluster: Record<string, unknown>, server: string): ExecConfig {
  const exec = raw as Record<string, unknown>
  const label = `the exec plugin of ${who}`
  const command = text(exec.command)
  if (!command) throw new UsageError(`${label} has no command`)
  const apiVersion = text(exec.apiVersion)
  if (!apiVersion || !EXEC_API_VERSIONS.includes(apiVersion)) {
    throw new UsageError(`${label}: apiVersion must be one of ${EXEC_API_VERSIONS.join(', ')}, got '${apiVersion ?? ''}'` +
      (apiVersion === 'client.authentication.k8s.io/v1alpha1' ? ' (v1alpha1 is gone from kubectl too)' : ''))
  }
  const args = Array.isArray(exec.args) ? exec.args.map(String) : []
  const env = Array.isArray(exec.env)
    ? (exec.env as Array<Record<string, unknown>>).map((e) => ({ name: String(e?.name ?? ''), value: String(e?.value ?? '') }))
    : []
  // As client-go: a command with a slash is a path, relative to the kubeconfig; a bare name is looked up in PATH.
  const path = command.includes('/') ? resolve(dirname(entry.file), command) : command
  const extensions = Array.isArray(cluster.extensions) ? cluster.extensions as Array<Record<string, unknown>> : []
  const config = extensions.find((e) => e?.name === 'client.authentication.k8s.io/exec')?.extension
  const shown: Record<string, unknown> = {
    server,
    'tls-server-name': cluster['tls-server-name'],
    'insecure-skip-tls-verify': cluster['insecure-skip-tls-verify'],
    'certificate-authority-data': cluster['certificate-authority-data'],
    'proxy-url': cluster['proxy-url'],
    'disable-compression': cluster['disable-compression'],
    config,
  }
  for (const k of Object.keys(shown)) if (shown[k] === undefined) delete shown[k]
  return {
    apiVersion,
    command: path,
    args,
    env,
    installHint: text(exec.installHint),
    provideClusterInfo: exec.provideClusterInfo === true,
    interactiveMode: text(exec.interactiveMode),
    cluster: shown,
    label,
  }
}
