// A small Kubernetes-like API server over mutual TLS: enough for `kubectl get pods`, a list and a
// watch. `npm run demo` puts mtls-proxy in front of it; the tests use it as the upstream.
import { randomUUID } from 'node:crypto'
import { createServer, type Server } from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket } from 'ws'
import type { DemoPki, KeyPairPem } from './pki.js'

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
export async function startMtlsServer(opts: MtlsServerOptions): Promise<MtlsServer> {
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
    url: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    }),
  }
}

export interface Pod {
  name: string
  phase: string
  created: Date
}

type WatchEvent = { type: 'ADDED' | 'MODIFIED' | 'DELETED'; pod: Pod }

export interface DemoApiServer extends MtlsServer {
  pods: Pod[]
  /** adds a pod and tells every open watch */
  addPod(name: string): Pod
  openWatches(): number
}

let resourceVersion = 1000

function podObject(pod: Pod): Record<string, unknown> {
  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: { name: pod.name, namespace: 'default', uid: randomUUID(), resourceVersion: String(resourceVersion), creationTimestamp: pod.created.toISOString() },
    spec: { containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }] },
    status: { phase: pod.phase, containerStatuses: [{ name: 'app', image: 'registry.k8s.io/pause:3.10', imageID: 'registry.k8s.io/pause@sha256:ee6521f290b2168b6e0935a181d4cff9be1ac3f505666ef0e3c98fae8199917a', ready: true, restartCount: 0 }] },
  }
}

function age(created: Date): string {
  const s = Math.max(0, Math.round((Date.now() - created.getTime()) / 1000))
  return s < 120 ? `${s}s` : `${Math.round(s / 60)}m`
}

function podTable(pods: Pod[]): Record<string, unknown> {
  const col = (name: string, format = '') => ({ name, type: 'string', format, description: name, priority: 0 })
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion: String(resourceVersion) },
    columnDefinitions: [col('Name', 'name'), col('Ready'), col('Status'), col('Restarts'), col('Age')],
    rows: pods.map((p) => ({
      cells: [p.name, '1/1', p.phase, '0', age(p.created)],
      object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: { name: p.name, namespace: 'default', creationTimestamp: p.created.toISOString() } },
    })),
  }
}

function json(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

function notFound(res: ServerResponse, message: string): void {
  json(res, 404, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'NotFound', code: 404 })
}

export async function startDemoApiServer(pki: DemoPki, opts: { host?: string; port?: number } = {}): Promise<DemoApiServer> {
  const pods: Pod[] = [
    { name: 'web-7d4b9c6f5-abcde', phase: 'Running', created: new Date(Date.now() - 3_600_000) },
    { name: 'db-0', phase: 'Running', created: new Date(Date.now() - 7_200_000) },
  ]
  const watchers = new Set<ServerResponse>()
  const send = (res: ServerResponse, event: WatchEvent) => res.write(`${JSON.stringify({ type: event.type, object: podObject(event.pod) })}\n`)

  const handler: Handler = (req, res) => {
    const url = new URL(req.url ?? '/', 'https://demo.invalid')
    const path = url.pathname.replace(/\/$/, '')
    if (req.method !== 'GET') {
      json(res, 405, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'the demo API server is read-only', reason: 'MethodNotAllowed', code: 405 })
      return
    }
    if (path === '/version') {
      json(res, 200, { major: '1', minor: '32', gitVersion: 'v1.32.0-mtls-proxy-demo', platform: 'linux/amd64' })
    } else if (path === '/api') {
      json(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: req.socket.localAddress ?? '' }] })
    } else if (path === '/apis') {
      json(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups: [] })
    } else if (path === '/api/v1') {
      json(res, 200, {
        kind: 'APIResourceList', groupVersion: 'v1',
        resources: [{ name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs: ['get', 'list', 'watch'], shortNames: ['po'] }],
      })
    } else if (path === '/api/v1/namespaces/default/pods') {
      // Go's strconv.ParseBool, as the API server reads it (the Python client sends `watch=True`).
      if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(url.searchParams.get('watch') ?? '')) {
        res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' })
        for (const pod of pods) send(res, { type: 'ADDED', pod })
        watchers.add(res)
        // A watch ends after timeoutSeconds, as the API server's do; clients then watch again.
        const timeout = Number(url.searchParams.get('timeoutSeconds'))
        const timer = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : undefined
        res.on('close', () => {
          clearTimeout(timer)
          watchers.delete(res)
        })
      } else if ((req.headers.accept ?? '').includes('as=Table')) {
        json(res, 200, podTable(pods))
      } else {
        json(res, 200, { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: String(resourceVersion) }, items: pods.map(podObject) })
      }
    } else if (path.startsWith('/api/v1/namespaces/default/pods/')) {
      const pod = pods.find((p) => p.name === path.split('/').pop())
      if (pod) json(res, 200, podObject(pod))
      else notFound(res, `pods "${path.split('/').pop()}" not found`)
    } else {
      notFound(res, `the demo API server does not serve ${path}`)
    }
  }

  const base = await startMtlsServer({ clientCaPem: pki.ca.certPem, serverCert: pki.server, handler, ...opts })
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (offered) => EXEC_PROTOCOLS.find((p) => offered.has(p)) ?? false })
  base.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'https://demo.invalid')
    const match = /^\/api\/v1\/namespaces\/default\/pods\/([^/]+)\/exec$/.exec(url.pathname)
    if (!match || !pods.some((p) => p.name === match[1])) {
      const body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'the demo API server only runs exec in its pods', reason: 'NotFound', code: 404 })
      socket.end(`HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => runExec(ws, match[1]!, url.searchParams.getAll('command')))
  })
  return {
    ...base,
    pods,
    addPod(name) {
      resourceVersion += 1
      const pod = { name, phase: 'Running', created: new Date() }
      pods.push(pod)
      for (const res of watchers) send(res, { type: 'ADDED', pod })
      return pod
    },
    openWatches: () => watchers.size,
    close: async () => {
      for (const res of watchers) res.end()
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
function pretend(pod: string, command: string[]): { stdout: string; stderr: string; exitCode: number } {
  const [name, ...args] = command
  if (name === 'echo') return { stdout: `${args.join(' ')}\n`, stderr: '', exitCode: 0 }
  if (name === 'hostname') return { stdout: `${pod}\n`, stderr: '', exitCode: 0 }
  if (name === 'true') return { stdout: '', stderr: '', exitCode: 0 }
  if (name === 'false') return { stdout: '', stderr: '', exitCode: 1 }
  if (name === 'sh' && args[0] === '-c' && /^exit \d+$/.test(args[1] ?? '')) return { stdout: '', stderr: '', exitCode: Number(args[1]!.slice(5)) }
  return { stdout: '', stderr: `demo pod: ${name ?? ''}: command not found\n`, exitCode: 127 }
}

function runExec(ws: WebSocket, pod: string, command: string[]): void {
  const { stdout, stderr, exitCode } = pretend(pod, command)
  const frame = (channel: number, text: string) => ws.send(Buffer.concat([Buffer.from([channel]), Buffer.from(text)]))
  if (stdout) frame(1, stdout)
  if (stderr) frame(2, stderr)
  const status = exitCode === 0
    ? { metadata: {}, status: 'Success' }
    : {
        metadata: {}, status: 'Failure', reason: 'NonZeroExitCode',
        message: `command terminated with non-zero exit code: error executing command [${command.join(' ')}], exit code ${exitCode}`,
        details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] },
      }
  frame(3, JSON.stringify(status))
  ws.close(1000)
}
