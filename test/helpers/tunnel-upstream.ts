// A fake API server that accepts upgrades the way kube-apiserver does: WebSocket with the
// Kubernetes channel subprotocols, and SPDY/3.1 on a POST. It echoes whatever it is sent.
import { createHash } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocketServer } from 'ws'
import type { Handler } from '../../src/demo/api-server.js'
import type { DemoPki } from '../../src/demo/pki.js'
import type { Teardown } from './pki.js'
import { caller, startUpstream } from './upstream.js'

export interface SeenUpgrade {
  url: string
  method: string
  headers: IncomingMessage['headers']
  rawHeaders: string[]
  cn: string | undefined
}

export const SUBPROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io']

/** handler: for ordinary requests (default: 200 with `{}`). */
export async function startTunnelUpstream (t: Teardown, pki: DemoPki, handler: Handler = (_req, res) => { res.writeHead(200); res.end('{}') }) {
  const upgrades: SeenUpgrade[] = []
  const sockets = new Set<Duplex>()
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (offered) => SUBPROTOCOLS.find((p) => offered.has(p)) ?? false,
  })
  const upstream = await startUpstream(t, pki, handler)
  upstream.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    upgrades.push({ url: req.url ?? '', method: req.method ?? '', headers: req.headers, rawHeaders: req.rawHeaders, cn: caller(req).cn })
    sockets.add(socket)
    socket.on('error', () => socket.destroy())
    socket.once('close', () => sockets.delete(socket))
    // An API server slow to answer.
    if (req.url?.includes('slow')) {
      setTimeout(() => socket.destroy(), 2_000)
      return
    }
    // The API server vanishing before it answers.
    if (req.url?.includes('hangup')) {
      socket.destroy()
      return
    }
    // An answer that comes after 103 Early Hints.
    if (req.url?.includes('early-hints')) {
      socket.write('HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n')
      setTimeout(() => socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'), 50)
      return
    }
    // An error page larger than any Status: 3 MiB, with its length or chunked, cut short when asked.
    const big = /big-(length|chunked)(-cut)?/.exec(req.url ?? '')
    if (big) {
      const size = 3 * 1024 * 1024
      const body = Buffer.alloc(size, 'e')
      const sent = big[2] ? body.subarray(0, 2 * 1024 * 1024) : body
      if (big[1] === 'length') {
        socket.write(`HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: ${size}\r\n\r\n`)
        socket.write(sent)
      } else {
        socket.write('HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n')
        socket.write(`${sent.length.toString(16)}\r\n`)
        socket.write(sent)
        if (!big[2]) socket.write('\r\n0\r\n\r\n')
      }
      if (big[2]) socket.destroy()
      else socket.end()
      return
    }
    if (req.url?.includes('forbidden')) {
      const body = '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \\"web\\" is forbidden: cannot exec","reason":"Forbidden","code":403}'
      socket.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
      return
    }
    // 'SPDY/3.1+portforward.k8s.io' is no valid token for the ws library, so that one is answered by hand.
    if (String(req.headers['sec-websocket-protocol']).includes('SPDY/3.1+portforward.k8s.io')) {
      const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Protocol: SPDY/3.1+portforward.k8s.io\r\n\r\n`)
      socket.pipe(socket)
      return
    }
    if (String(req.headers.upgrade).toLowerCase() === 'spdy/3.1') {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n')
      socket.pipe(socket)
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      // Garbage frames (the fuzzer sends them) close this one connection, nothing more.
      ws.on('error', () => ws.terminate())
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
      // The test asks the server to hang up first by sending "bye".
      ws.on('message', (data) => { if (String(data) === 'bye') ws.close(1000, 'done') })
    })
  })
  t.teardown(() => { for (const s of sockets) s.destroy(); wss.close() })
  return { upstream, upgrades, sockets }
}
