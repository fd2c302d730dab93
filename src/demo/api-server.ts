// A small Kubernetes-like API server over mutual TLS, believable for pods: kubectl get (tables too),
// watch with real events, create, apply, patch, label, delete, logs (-f) and exec; namespaces to
// list. `npm run demo` puts mtls-proxy in front of it; the tests use it as the upstream.
import { createServer, type Server } from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket } from 'ws'
import { bracketed } from '../util/addresses.js'
import type { DemoPki, KeyPairPem } from './pki.js'
import { DemoError, Store, type Obj } from './store.js'

export type Handler = (req: IncomingMessage, res: ServerResponse) => void

export interface MtlsServer {
  server: Server
  port: number
  url: string
  close(): Promise<void>
}

export interface MtlsServerOptions {
  /** CA whose client certificates are accepted */
  clientCaPem: string
  serverCert: KeyPairPem
  handler: Handler
  host?: string
  port?: number
}

/** An HTTPS server that demands a client certificate signed by clientCaPem, like kube-apiserver. */
export async function startMtlsServer (opts: MtlsServerOptions): Promise<MtlsServer> {
  const server = createServer({
    ca: opts.clientCaPem,
    cert: opts.serverCert.certPem,
    key: opts.serverCert.keyPem,
    requestCert: true,
    rejectUnauthorized: true,
  }, opts.handler)
  const host = opts.host ?? '127.0.0.1'
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, host, () => resolve())
  })
  const { port } = server.address() as AddressInfo
  return {
    server,
    port,
    url: `https://${bracketed(host)}:${port}`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    }),
  }
}

export interface DemoApiServer extends MtlsServer {
  /** creates a pod in default (as a controller would), which every open watch sees */
  addPod(name: string): Obj
  /** deletes a pod of default if it is still there (a user may have deleted it) */
  removePod(name: string): void
  openWatches(): number
}

// A boolean parameter as the API server reads it: false only when `0` or `false` (any case), absent aside.
const isTrue = (value: string | null) => value !== null && !/^(?:0|false)$/i.test(value)

function age (created: string): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(created)) / 1000))
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`
}

const VERSION = { major: '1', minor: '32', gitVersion: 'v1.32.0-mtls-proxy-demo', platform: 'linux/amd64' }

const list = (kind: string, resourceVersion: string, items: Obj[]) => ({ kind, apiVersion: 'v1', metadata: { resourceVersion }, items })

const column = (name: string, format = '') => ({ name, type: 'string', format, description: name, priority: 0 })

/** The server-side printing kubectl asks for (`Accept: …;as=Table`), as the API server does it for these kinds. */
function table (kind: 'Pod' | 'Namespace', objects: Obj[], resourceVersion: string): Obj {
  const rows = objects.map((o) => {
    const statuses: Obj[] = o.status?.containerStatuses ?? []
    const ready = `${statuses.filter((c) => c.ready).length}/${(o.spec?.containers ?? []).length}`
    const restarts = String(statuses.reduce((n: number, c) => n + (c.restartCount ?? 0), 0))
    const cells = kind === 'Pod'
      ? [o.metadata.name, ready, o.status?.phase ?? 'Pending', restarts, age(o.metadata.creationTimestamp)]
      : [o.metadata.name, o.status?.phase ?? 'Active', age(o.metadata.creationTimestamp)]
    return { cells, object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata } }
  })
  const columnDefinitions = kind === 'Pod'
    ? [column('Name', 'name'), column('Ready'), column('Status'), column('Restarts'), column('Age')]
    : [column('Name', 'name'), column('Status'), column('Age')]
  return { kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: { resourceVersion }, columnDefinitions, rows }
}

function json (res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

function failure (res: ServerResponse, code: number, reason: string, message: string): void {
  json(res, code, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code })
}

function readBody (req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > 1024 * 1024) req.destroy(new DemoError(413, 'RequestEntityTooLarge', 'the demo API server takes bodies up to 1 MiB'))
      else chunks.push(c)
    })
    req.on('end', () => {
      try {
        resolve(chunks.length === 0 ? undefined : JSON.parse(Buffer.concat(chunks).toString('utf8')))
      } catch {
        reject(new DemoError(400, 'BadRequest', 'the body is not JSON'))
      }
    })
    req.on('error', reject)
  })
}

// The pod resource, its subresources and verbs, as discovery and OpenAPI describe them.
const RESOURCES = [
  { name: 'namespaces', singularName: 'namespace', namespaced: false, kind: 'Namespace', verbs: ['get', 'list'], shortNames: ['ns'] },
  {
    name: 'pods',
    singularName: 'pod',
    namespaced: true,
    kind: 'Pod',
    verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
    shortNames: ['po'],
    categories: ['all'],
  },
  { name: 'pods/exec', singularName: '', namespaced: true, kind: 'PodExecOptions', verbs: ['create', 'get'] },
  { name: 'pods/log', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get'] },
  // Named only, as the groups below: the README's same-cluster sidecar creates one.
  { name: 'serviceaccounts', singularName: 'serviceaccount', namespaced: true, kind: 'ServiceAccount', verbs: ['create', 'get', 'list'], shortNames: ['sa'] },
]

// Groups the demo serves nothing of but names, so that `kubectl create --dry-run=client -f` can map
// the README's manifests (a Deployment, a Job, a Role and its binding) to their resources.
const GROUPS: Record<string, Obj[]> = {
  apps: [{ name: 'deployments', singularName: 'deployment', namespaced: true, kind: 'Deployment', verbs: ['create', 'get', 'list'], shortNames: ['deploy'] }],
  batch: [{ name: 'jobs', singularName: 'job', namespaced: true, kind: 'Job', verbs: ['create', 'get', 'list'] }],
  'rbac.authorization.k8s.io': [
    { name: 'roles', singularName: 'role', namespaced: true, kind: 'Role', verbs: ['create', 'get', 'list'] },
    { name: 'rolebindings', singularName: 'rolebinding', namespaced: true, kind: 'RoleBinding', verbs: ['create', 'get', 'list'] },
  ],
}
const GROUP_LIST = {
  kind: 'APIGroupList',
  apiVersion: 'v1',
  groups: Object.keys(GROUPS).map((name) => {
    const version = { groupVersion: `${name}/v1`, version: 'v1' }
    return { name, versions: [version], preferredVersion: version }
  }),
}

// Enough OpenAPI v3 for kubectl to see that the server validates fields itself (fieldValidation on
// PATCH of each kind): `kubectl create -f` and `apply` then send objects without downloading schemas.
// (So a client-side dry run of a Deployment or Job checks its shape and kind, not its field names.)
function openApiOf (prefix: string, group: string, kinds: Array<[kind: string, plural: string]>): Obj {
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes (mtls-proxy demo)', version: 'v1.32.0' },
    paths: Object.fromEntries(kinds.map(([kind, plural]) => [`/${prefix}/namespaces/{namespace}/${plural}/{name}`, {
      patch: {
        'x-kubernetes-group-version-kind': { group, version: 'v1', kind },
        'x-kubernetes-action': 'patch',
        parameters: [{ name: 'fieldValidation', in: 'query', schema: { type: 'string' } }],
        responses: { 200: { description: 'OK' } },
      },
    }])),
  }
}
const OPENAPI: Record<string, Obj> = {
  'api/v1': openApiOf('api/v1', '', [['Pod', 'pods'], ['ServiceAccount', 'serviceaccounts']]),
  'apis/apps/v1': openApiOf('apis/apps/v1', 'apps', [['Deployment', 'deployments']]),
  'apis/batch/v1': openApiOf('apis/batch/v1', 'batch', [['Job', 'jobs']]),
  'apis/rbac.authorization.k8s.io/v1': openApiOf('apis/rbac.authorization.k8s.io/v1', 'rbac.authorization.k8s.io', [['Role', 'roles'], ['RoleBinding', 'rolebindings']]),
}
const OPENAPI_ROOT = {
  paths: Object.fromEntries(Object.keys(OPENAPI).map((path) => [path, { serverRelativeURL: `/openapi/v3/${path}?hash=mtls-proxy-demo` }])),
}

/** One pod's pretend log: a few lines, then (with follow) a line a second until the client leaves. */
function podLog (res: ServerResponse, pod: Obj, follow: boolean): void {
  res.writeHead(200, { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' })
  const started = pod.metadata.creationTimestamp as string
  for (const what of ['starting', 'listening on :8080', 'ready']) res.write(`${started} ${pod.metadata.name}: ${what}\n`)
  if (!follow) {
    res.end()
    return
  }
  let n = 0
  const timer = setInterval(() => res.write(`${new Date().toISOString()} ${pod.metadata.name}: tick ${++n}\n`), 1_000)
  res.on('close', () => clearInterval(timer))
}

/** A pod of one pause container, as the demo creates it. */
function podOf (name: string, app: string): Obj {
  const containers = [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }]
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { app } }, spec: { containers } }
}

export async function startDemoApiServer (pki: DemoPki, opts: { host?: string; port?: number } = {}): Promise<DemoApiServer> {
  const store = new Store()
  store.create('default', podOf('web-7d4b9c6f5-abcde', 'web'), new Date(Date.now() - 3_600_000))
  store.create('default', podOf('db-0', 'db'), new Date(Date.now() - 7_200_000))
  const watches = new Set<ServerResponse>()

  /** A list, or with watch=1 the stream of changes: from resourceVersion on, or every current pod as ADDED first. */
  const listPods = (req: IncomingMessage, res: ServerResponse, url: URL, namespace: string | undefined) => {
    const asTable = (req.headers.accept ?? '').includes('as=Table')
    const shape = (o: Obj) => (asTable ? table('Pod', [o], store.resourceVersion) : o)
    if (!isTrue(url.searchParams.get('watch'))) {
      const pods = store.pods(namespace)
      json(res, 200, asTable ? table('Pod', pods, store.resourceVersion) : list('PodList', store.resourceVersion, pods))
      return
    }
    const from = Number(url.searchParams.get('resourceVersion') || 0)
    const backlog = from > 0 ? store.since(from) : store.pods(namespace).map((object) => ({ type: 'ADDED' as const, object, rv: 0 }))
    if (backlog === undefined) {
      failure(res, 410, 'Expired', `too old resource version: ${from} (${store.resourceVersion})`)
      return
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' })
    const send = (e: { type: string; object: Obj }) => {
      if (namespace !== undefined && e.object.metadata.namespace !== namespace) return
      res.write(`${JSON.stringify({ type: e.type, object: shape(e.object) })}\n`)
    }
    for (const e of backlog) send(e)
    const unsubscribe = store.subscribe(send)
    watches.add(res)
    // A watch ends after timeoutSeconds, as the API server's do; clients then watch again.
    const timeout = Number(url.searchParams.get('timeoutSeconds'))
    const timer = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : undefined
    res.on('close', () => {
      clearTimeout(timer)
      unsubscribe()
      watches.delete(res)
    })
  }

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'https://demo.invalid')
    const path = url.pathname.replace(/\/$/, '')
    const method = req.method ?? 'GET'
    const parts = path.split('/').slice(1)
    const get = method === 'GET'
    if (get && path === '/version') return json(res, 200, VERSION)
    if (get && path === '/api') {
      return json(res, 200, {
        kind: 'APIVersions',
        versions: ['v1'],
        serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: req.socket.localAddress ?? '' }],
      })
    }
    if (get && path === '/apis') return json(res, 200, GROUP_LIST)
    const group = /^\/apis\/([a-z0-9.-]+)\/v1$/.exec(path)?.[1]
    if (get && group && GROUPS[group]) return json(res, 200, { kind: 'APIResourceList', groupVersion: `${group}/v1`, resources: GROUPS[group] })
    if (get && path === '/api/v1') return json(res, 200, { kind: 'APIResourceList', groupVersion: 'v1', resources: RESOURCES })
    if (get && path === '/openapi/v3') return json(res, 200, OPENAPI_ROOT)
    const openApi = get && path.startsWith('/openapi/v3/') ? OPENAPI[path.slice('/openapi/v3/'.length)] : undefined
    if (openApi) return json(res, 200, openApi)
    if (get && path === '/api/v1/pods') return listPods(req, res, url, undefined)
    if (parts[0] !== 'api' || parts[1] !== 'v1' || parts[2] !== 'namespaces') {
      throw new DemoError(404, 'NotFound', `the demo API server does not serve ${path}`)
    }
    const [namespace, resource, name, sub] = parts.slice(3)
    if (namespace === undefined) {
      if (!get) throw new DemoError(405, 'MethodNotAllowed', 'the demo API server has a fixed set of namespaces')
      const namespaces = [...store.namespaces.values()]
      const asTable = (req.headers.accept ?? '').includes('as=Table')
      const rv = store.resourceVersion
      return json(res, 200, asTable ? table('Namespace', namespaces, rv) : list('NamespaceList', rv, namespaces))
    }
    if (!store.namespaces.has(namespace)) throw new DemoError(404, 'NotFound', `namespaces "${namespace}" not found`)
    if (resource === undefined && get) return json(res, 200, store.namespaces.get(namespace))
    // kubectl describe asks for the events of what it describes; the demo keeps none.
    if (resource === 'events' && get) return json(res, 200, list('EventList', store.resourceVersion, []))
    if (resource !== 'pods') throw new DemoError(404, 'NotFound', `the demo API server does not serve ${path}`)
    if (name === undefined) {
      if (get) return listPods(req, res, url, namespace)
      if (method === 'POST') return json(res, 201, store.create(namespace, await readBody(req) as Obj))
      throw new DemoError(405, 'MethodNotAllowed', `${method} is not allowed on a list of pods`)
    }
    if (sub === 'log' && get) return podLog(res, store.get(namespace, name), isTrue(url.searchParams.get('follow')))
    if (sub !== undefined) throw new DemoError(404, 'NotFound', `the demo API server does not serve ${path}`)
    if (get) {
      const pod = store.get(namespace, name)
      return json(res, 200, (req.headers.accept ?? '').includes('as=Table') ? table('Pod', [pod], store.resourceVersion) : pod)
    }
    if (method === 'PATCH') {
      const type = req.headers['content-type'] ?? ''
      if (!type.startsWith('application/merge-patch+json') && !type.startsWith('application/strategic-merge-patch+json')) {
        throw new DemoError(415, 'UnsupportedMediaType', `the demo API server takes merge and strategic merge patches, not ${type}`)
      }
      return json(res, 200, store.patch(namespace, name, await readBody(req), type.startsWith('application/strategic-merge-patch+json')))
    }
    if (method === 'PUT') return json(res, 200, store.replace(namespace, name, await readBody(req) as Obj))
    if (method === 'DELETE') return json(res, 200, store.delete(namespace, name))
    throw new DemoError(405, 'MethodNotAllowed', `${method} is not allowed on a pod`)
  }

  const handler: Handler = (req, res) => {
    route(req, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy()
        return
      }
      if (err instanceof DemoError) failure(res, err.code, err.reason, err.message)
      else failure(res, 500, 'InternalError', (err as Error).message)
    })
  }

  const base = await startMtlsServer({ clientCaPem: pki.ca.certPem, serverCert: pki.server, handler, ...opts })
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (offered) => EXEC_PROTOCOLS.find((p) => offered.has(p)) ?? false })
  base.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'https://demo.invalid')
    const match = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/exec$/.exec(url.pathname)
    const exists = match !== null && store.pods(match[1]).some((p) => p.metadata.name === match[2])
    if (!exists) {
      const message = 'the demo API server only runs exec in its pods'
      const status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'NotFound', code: 404 }
      const body = JSON.stringify(status)
      socket.end(`HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => runExec(ws, match[2]!, url.searchParams.getAll('command')))
  })
  return {
    ...base,
    addPod: (name) => store.create('default', podOf(name, 'demo')),
    removePod: (name) => { try { store.delete('default', name) } catch { /* gone already */ } },
    openWatches: () => watches.size,
    close: async () => {
      for (const res of watches) res.end()
      for (const ws of wss.clients) ws.terminate()
      wss.close()
      await base.close()
    },
  }
}

// The Kubernetes remote-command protocol over WebSocket: each binary message starts with its
// channel (1 stdout, 2 stderr, 3 the final Status); v5 adds 255 for closing a stream.
const EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io']

/** A few pretend commands, enough to show output and exit codes through the proxy. */
function pretend (pod: string, command: string[]): { stdout: string; stderr: string; exitCode: number } {
  const [name, ...args] = command
  if (name === 'echo') return { stdout: `${args.join(' ')}\n`, stderr: '', exitCode: 0 }
  if (name === 'hostname') return { stdout: `${pod}\n`, stderr: '', exitCode: 0 }
  if (name === 'true') return { stdout: '', stderr: '', exitCode: 0 }
  if (name === 'false') return { stdout: '', stderr: '', exitCode: 1 }
  if (name === 'sh' && args[0] === '-c' && /^exit \d+$/.test(args[1] ?? '')) {
    return { stdout: '', stderr: '', exitCode: Number(args[1]!.slice(5)) }
  }
  return { stdout: '', stderr: `demo pod: ${name ?? ''}: command not found\n`, exitCode: 127 }
}

function runExec (ws: WebSocket, pod: string, command: string[]): void {
  const { stdout, stderr, exitCode } = pretend(pod, command)
  const frame = (channel: number, text: string) => ws.send(Buffer.concat([Buffer.from([channel]), Buffer.from(text)]))
  if (stdout) frame(1, stdout)
  if (stderr) frame(2, stderr)
  const status = exitCode === 0
    ? { metadata: {}, status: 'Success' }
    : {
        metadata: {},
        status: 'Failure',
        reason: 'NonZeroExitCode',
        message: `command terminated with non-zero exit code: error executing command [${command.join(' ')}], exit code ${exitCode}`,
        details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] },
      }
  frame(3, JSON.stringify(status))
  ws.close(1000)
}
