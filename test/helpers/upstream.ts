// Fake API servers over real mutual TLS, torn down with the test, and what they tell of who called.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import type { TLSSocket } from 'node:tls'
import type { AddressInfo } from 'node:net'
import { createServer as createHttpsServer } from 'node:https'
import { startDemoApiServer, startMtlsServer, type DemoApiServer, type Handler, type MtlsServer } from '../../src/demo/api-server.js'
import type { DemoPki } from '../../src/demo/pki.js'
import type { Teardown } from './pki.js'

export interface SeenRequest {
  method: string
  url: string
  headers: IncomingHttpHeaders
  rawHeaders: string[]
}

export interface RecordingServer extends MtlsServer {
  /** every request that reached the handler */
  seen: SeenRequest[]
  /** TLS connections that completed the handshake */
  connections: number
  /** requests other than the proxy's readiness probes */
  calls(): SeenRequest[]
}

export async function startUpstream (t: Teardown, pki: DemoPki, handler: Handler, opts: { port?: number } = {}): Promise<RecordingServer> {
  const seen: SeenRequest[] = []
  const server = await startMtlsServer({
    clientCaPem: pki.ca.certPem,
    serverCert: pki.server,
    handler: (req, res) => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders })
      handler(req, res)
    },
    ...opts,
  })
  const recording = Object.assign(server, {
    seen,
    connections: 0,
    calls: () => seen.filter((r) => r.headers['user-agent'] !== 'mtls-proxy-readiness'),
  })
  server.server.on('secureConnection', () => { recording.connections++ })
  t.teardown(() => server.close())
  return recording
}

/** Who reached the upstream: its client certificate's CN, the Authorization it was sent, and the target. */
export interface Caller {
  /** undefined: no certificate the server trusts, or the connection is gone */
  cn: string | undefined
  authorization: string | undefined
  url: string
}

export function caller (req: IncomingMessage): Caller {
  const socket = req.socket as TLSSocket
  const cn = socket.authorized ? socket.getPeerCertificate()?.subject?.CN : undefined
  return { cn: typeof cn === 'string' ? cn : undefined, authorization: req.headers.authorization, url: req.url ?? '' }
}

/** Answers every request with who called, as JSON: `{ cn, url }`, and `authorization` when one was sent. */
export const whoAmIHandler: Handler = (req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end(JSON.stringify(caller(req)))
}

/** Answers every request with a JSON echo of what it received (method, url, headers, body length). */
export const echoHandler: Handler = (req, res) => {
  let length = 0
  req.on('data', (chunk: Buffer) => { length += chunk.length })
  req.on('end', () => {
    const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, bodyLength: length })
    res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'yes' })
    res.end(body)
  })
}

export async function startDemoUpstream (t: Teardown, pki: DemoPki): Promise<DemoApiServer> {
  const server = await startDemoApiServer(pki)
  t.teardown(() => server.close())
  return server
}

/**
 * An API server over TLS that asks for a client certificate but does not insist (a token alone may
 * do), answering every request with who called (`whoAmIHandler`). `seen`: the callers, probes aside.
 */
export async function startTokenUpstream (t: Teardown, pki: DemoPki): Promise<{ url: string; port: number; seen: Caller[] }> {
  const seen: Caller[] = []
  const tls = { ca: pki.ca.certPem, cert: pki.server.certPem, key: pki.server.keyPem, requestCert: true, rejectUnauthorized: false }
  const server = createHttpsServer(tls, (req, res) => {
    if (req.headers['user-agent'] !== 'mtls-proxy-readiness') seen.push(caller(req))
    whoAmIHandler(req, res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  const { port } = server.address() as AddressInfo
  return { url: `https://127.0.0.1:${port}`, port, seen }
}
