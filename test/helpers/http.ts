// Plain-HTTP clients for talking to the proxy: undici for ordinary calls, raw sockets where an
// HTTP client would tidy the request up.
import { connect } from 'node:net'
import { request as undiciRequest } from 'undici'

export interface Response {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
  /** the body as received, byte for byte */
  bytes: Buffer
  json<T = Record<string, unknown>>(): T
}

interface RequestInit {
  method?: string
  headers?: Record<string, string>
  body?: string | Buffer
}

export async function get (url: string, init: RequestInit = {}): Promise<Response> {
  const res = await undiciRequest(url, { method: (init.method ?? 'GET') as 'GET', headers: init.headers, body: init.body })
  const bytes = Buffer.from(await res.body.arrayBuffer())
  const body = bytes.toString('utf8')
  return { status: res.statusCode, headers: res.headers, body, bytes, json: <T>() => JSON.parse(body) as T }
}

/** Sends bytes exactly as given and returns everything the server answers until it closes (or timeoutMs). */
export function rawRequest (port: number, text: string, timeoutMs = 3_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let answer = ''
    const timer = setTimeout(() => socket.destroy(), timeoutMs)
    socket.on('connect', () => socket.write(text))
    socket.on('data', (d) => { answer += d.toString('latin1') })
    socket.on('close', () => { clearTimeout(timer); resolve(answer) })
    socket.on('error', reject)
  })
}

export function statusLine (answer: string): number {
  return Number(/^HTTP\/1\.[01] (\d{3})/.exec(answer)?.[1] ?? 0)
}
