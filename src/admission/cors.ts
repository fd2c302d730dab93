// CORS for the web apps the user lists with --allow-origin, and for no one else. A listed origin's
// preflight is answered here (never forwarded) with what the Kubernetes API needs; its answers
// carry Access-Control-Allow-Origin (the origin itself, never `*`) and expose the headers clients
// read. Credentials mode is never allowed: no Access-Control-Allow-Credentials is ever sent, so a
// browser never attaches the user's cookies or client certificates on the page's behalf.
import type { IncomingMessage, ServerResponse } from 'node:http'

// The headers a Kubernetes client reads besides the CORS-safelisted ones.
const EXPOSED = [
  'Warning', 'Audit-Id', 'Location', 'Content-Disposition', 'Retry-After', 'X-Kubernetes-Pf-Flowschema-Uid',
  'X-Kubernetes-Pf-Prioritylevel-Uid',
].join(', ')
// A preflight may be cached this long by the browser (Chrome caps it at 2 hours).
const MAX_AGE_SECONDS = 600
// Request header names a page may ask for: tokens (RFC 9110 §5.6.2), a bounded list.
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/
const MAX_REQUESTED_HEADERS = 50

export class Cors {
  readonly #origins: ReadonlySet<string>
  readonly #methods: string
  /** answers on their way to a listed origin's page, and that origin */
  readonly #marked = new WeakMap<ServerResponse, string>()

  constructor (allowOrigins: readonly string[], methods: readonly string[]) {
    this.#origins = new Set(allowOrigins)
    this.#methods = methods.join(', ')
  }

  /** A listed origin, or undefined: every other origin keeps the guard's refusal and gets no CORS header. */
  listed (req: Pick<IncomingMessage, 'headers'>): string | undefined {
    const origin = req.headers.origin
    return origin !== undefined && this.#origins.has(origin) ? origin : undefined
  }

  /** An OPTIONS request asking whether a page may send its real one. */
  isPreflight (req: Pick<IncomingMessage, 'method' | 'headers'>): boolean {
    return req.method === 'OPTIONS' && req.headers.origin !== undefined && req.headers['access-control-request-method'] !== undefined
  }

  /**
   * The answer to an admitted preflight (its origin listed, its method allowed): 204 with these
   * headers. The requested headers are echoed, checked, as `*` would not cover Authorization (the
   * --token-file token a page sends).
   */
  preflight (req: Pick<IncomingMessage, 'headers'>, origin: string): string[] {
    const requested = String(req.headers['access-control-request-headers'] ?? '')
      .split(',').map((h) => h.trim()).filter((h) => HEADER_NAME.test(h)).slice(0, MAX_REQUESTED_HEADERS)
    return [
      'access-control-allow-origin', origin,
      'access-control-allow-methods', this.#methods,
      ...(requested.length > 0 ? ['access-control-allow-headers', requested.join(', ')] : []),
      'access-control-max-age', String(MAX_AGE_SECONDS),
      'vary', 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
    ]
  }

  /** Notes that this answer goes to a listed origin's page: whoever writes it adds `headers(res)`. */
  mark (req: Pick<IncomingMessage, 'headers'>, res: ServerResponse): void {
    const origin = this.listed(req)
    if (origin !== undefined) this.#marked.set(res, origin)
  }

  /** The CORS lines of a marked answer; undefined for any other. */
  headers (res: ServerResponse): string[] | undefined {
    const origin = this.#marked.get(res)
    if (origin === undefined) return undefined
    return ['access-control-allow-origin', origin, 'access-control-expose-headers', EXPOSED, 'vary', 'Origin']
  }

  /**
   * Adds ours to a marked answer's forwarded header lines (the API server's own CORS lines are
   * already gone, forwarding/headers.ts); its Vary stays, with Origin on a line of its own.
   */
  addTo (res: ServerResponse, headers: string[]): void {
    const ours = this.headers(res)
    if (ours !== undefined) headers.push(...ours)
  }
}
