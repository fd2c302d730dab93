// Where an answer may send its client. A Location or Content-Location from an API server names a
// place in its own cluster; behind /clusters/NAME a path gets that prefix back. But a client
// resolves what it is given, dot segments and all, against the URL it asked: from dev's API server,
// `307 Location: /../../clusters/prod/…` or `http://127.0.0.1:8001/clusters/prod/…` would send a
// client's DELETE, or its `create -f` body (Go clients follow 307 and 308 with both), into prod, as
// prod's identity; and `https://collector.example/` would receive the caller's token, which
// client-go adds to every hop. kube-apiserver passes a backend's Location through
// `services/…/proxy`, so a workload in a cluster can try this too. So each such header is resolved
// the ways clients resolve it (WHATWG as browsers and curl's URL parser do: `\` is `/`, `%2e` a
// dot; RFC 3986 as Go and Python do: literal dots, a literal authority), and the answer is refused
// unless every way lands in its own cluster on this very listener.
import { BlockList, isIP } from 'node:net'
import { networkInterfaces } from 'node:os'
import { unbracketed } from '../util/addresses.js'

/** What a redirect of one answer is judged against. */
export interface RedirectScope {
  /** the Host the client asked (the guard accepted it) */
  host: string
  /** the target the client asked, in origin form, as it sent it */
  target: string
  /** the prefix the client named its cluster with, as it wrote it ('' for none) */
  prefix: string
  /** the cluster the answer came from */
  cluster: string
  /** the cluster the proxy would serve a target (origin form) from; undefined: it would refuse it */
  landing: (target: string) => string | undefined
}

/** This proxy as a client would reach it again. */
export interface Listener {
  scheme: 'http' | 'https'
  /** undefined on a Unix socket: no URL names it */
  port: () => number | undefined
  /** the Host names it serves (the guard's patterns, port removed, IPv6 in brackets) */
  acceptHosts: readonly RegExp[]
}

// Names and addresses that reach this machine whatever the proxy's settings: a client following a
// redirect to one of them reaches this proxy, or another local service that may hold credentials.
const LOCAL_ADDRESSES = new BlockList()
LOCAL_ADDRESSES.addSubnet('127.0.0.0', 8, 'ipv4')
LOCAL_ADDRESSES.addAddress('0.0.0.0', 'ipv4')
LOCAL_ADDRESSES.addAddress('::1', 'ipv6')
LOCAL_ADDRESSES.addAddress('::', 'ipv6')
LOCAL_ADDRESSES.addSubnet('::ffff:127.0.0.0', 104, 'ipv6')
LOCAL_ADDRESSES.addAddress('::ffff:0.0.0.0', 'ipv6')

const WITH_SCHEME = /^[a-z][a-z0-9+.-]*:/i
// Schemes a client follows to a server; a Location of any other (mailto:, data:) leads nowhere.
const FOLLOWED = new Set(['http:', 'https:', 'ws:', 'wss:'])

export class Redirects {
  readonly #listener: Listener
  /** this machine's own addresses, as they were at start */
  readonly #own: ReadonlySet<string>

  constructor (listener: Listener) {
    this.#listener = listener
    this.#own = new Set(Object.values(networkInterfaces()).flat().map((i) => i!.address.toLowerCase()))
  }

  /**
   * Confines every Location and Content-Location of a flat header list (name, value, …; names in
   * any case) to its cluster: a path gets the client's prefix (changed in place). Returns why the
   * answer must be refused, or undefined. `scope` is asked for only when there is one to judge.
   */
  confine (headers: string[], scope: () => RedirectScope): string | undefined {
    let judging: RedirectScope | undefined
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!
      // Most answers have neither: names of other lengths are passed over without a lower-casing.
      if (name.length !== 8 && name.length !== 16) continue
      const lower = name.toLowerCase()
      if (lower !== 'location' && lower !== 'content-location') continue
      const value = headers[i + 1]!
      const judged = this.#judge(value, judging ??= scope())
      if (typeof judged !== 'string') {
        return `its ${lower === 'location' ? 'Location' : 'Content-Location'} '${shown(value)}' ${judged.refused}`
      }
      headers[i + 1] = judged
    }
    return undefined
  }

  /** The value to send on, or why not. */
  #judge (value: string, scope: RedirectScope): string | { refused: string } {
    // Clients drop tabs and newlines (WHATWG) or refuse the whole (Go): either way not one place.
    if (hasControl(value)) return { refused: 'holds control characters' }
    const reference = value.trim()
    // `/\host` and `\\host` are a host to browsers and a path to Go: no one place either.
    if (reference.startsWith('\\') || reference.startsWith('/\\')) {
      return { refused: 'starts with a backslash, which clients read differently' }
    }
    const sent = reference.startsWith('/') && !reference.startsWith('//') ? scope.prefix + reference : reference
    const base = `${this.#listener.scheme}://${scope.host}${scope.target}`
    let resolved: URL
    try {
      resolved = new URL(sent, base)
    } catch {
      return { refused: 'cannot be resolved to a URL' }
    }
    const cluster = `cluster '${shown(scope.cluster)}'`
    const outside = (where: string) => ({ refused: `leads out of ${cluster}, to ${where}` })
    // Where each kind of client asks next: the WHATWG view, and Go's (literal host, literal dots).
    const here: string[] = []
    if (!WITH_SCHEME.test(sent) && !sent.startsWith('//')) {
      // Relative: every client comes back to this listener.
      here.push(resolved.pathname + resolved.search, dotsRemoved(referencePath(scope.target, sent)))
    } else {
      // mailto:, data: and the like lead nowhere a client follows.
      if (!FOLLOWED.has(resolved.protocol)) return sent
      // Anywhere but this listener is out of the cluster: another local service, another cluster's
      // server, or a host far away, to which client-go would carry the caller's token too (it adds
      // it to every hop of a redirect).
      if (!this.#namesThisMachine(resolved.hostname) || !this.#isThisListener(resolved)) {
        return outside(`${resolved.host}, away from mtls-proxy (a client would take the request, and its token, there)`)
      }
      here.push(resolved.pathname + resolved.search)
      // Go and Python read the authority literally: another host there is another place; an empty one
      // (`///api`, `http:///api`) is a path on this host to them.
      const literal = literalAuthority(sent)
      if (literal?.host === '') here.push(literal.target, dotsRemoved(sent.replace(WITH_SCHEME, '')))
      else if (literal && literal.host !== resolved.hostname) return outside(`${literal.host}, as Go and Python read it`)
      else if (literal) here.push(literal.target)
    }
    for (const target of here) {
      const landing = scope.landing(target)
      if (landing === scope.cluster) continue
      return outside(`${landing === undefined ? 'nowhere the proxy serves' : `cluster '${shown(landing)}'`} (${shown(target)})`)
    }
    return sent
  }

  #namesThisMachine (host: string): boolean {
    let h = host.toLowerCase()
    if (h.endsWith('.')) h = h.slice(0, -1)
    if (h === 'localhost' || h.endsWith('.localhost')) return true
    if (this.#listener.acceptHosts.some((p) => p.test(h))) return true
    const address = unbracketed(h)
    const family = isIP(address)
    if (family === 0) return false
    return LOCAL_ADDRESSES.check(address, family === 4 ? 'ipv4' : 'ipv6') || this.#own.has(address)
  }

  #isThisListener (url: URL): boolean {
    const { scheme, port } = this.#listener
    const secure = url.protocol === 'https:' || url.protocol === 'wss:'
    return secure === (scheme === 'https') && port() === Number(url.port || (secure ? 443 : 80))
  }
}

function hasControl (text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x20 || c === 0x7f) return true
  }
  return false
}

/** For messages: printable, and short. */
function shown (text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text
}

/**
 * An absolute or scheme-relative reference as Go reads it: the host after the last @ of the
 * authority (normalised as the WHATWG host is: 127.1 is 127.0.0.1 to curl too, so the two compare),
 * and the path asked there, dot segments resolved, nothing decoded. Undefined: no authority.
 */
function literalAuthority (reference: string): { host: string; target: string } | undefined {
  const at = reference.indexOf('//')
  if (at < 0 || (at > 0 && !reference.slice(0, at).endsWith(':'))) return undefined
  let end = at + 2
  while (end < reference.length && !'/?#'.includes(reference[end]!)) end++
  const authority = reference.slice(at + 2, end)
  const hostPort = authority.slice(authority.lastIndexOf('@') + 1)
  let host: string
  try {
    host = new URL(`http://${hostPort}`).hostname
  } catch {
    host = hostPort.toLowerCase()
  }
  const hash = reference.indexOf('#', end)
  return { host, target: dotsRemoved(reference.slice(end, hash < 0 ? undefined : hash) || '/') }
}

/** A relative reference merged with the target it is relative to (RFC 3986 §5.2.2), query kept, fragment dropped. */
function referencePath (base: string, reference: string): string {
  const q = base.indexOf('?')
  const basePath = q < 0 ? base : base.slice(0, q)
  const hash = reference.indexOf('#')
  const ref = hash < 0 ? reference : reference.slice(0, hash)
  if (ref === '') return base
  if (ref.startsWith('?')) return basePath + ref
  if (ref.startsWith('/')) return ref
  return basePath.slice(0, basePath.lastIndexOf('/') + 1) + ref
}

/** RFC 3986 §5.2.4 on the path of `target` (its query untouched): literal `.` and `..` segments only, as Go resolves them. */
export function dotsRemoved (target: string): string {
  const q = target.indexOf('?')
  const path = q < 0 ? target : target.slice(0, q)
  const segments = path.split('/').slice(1)
  const out: string[] = []
  segments.forEach((segment, i) => {
    const last = i === segments.length - 1
    if (segment === '.' || segment === '..') {
      if (segment === '..') out.pop()
      if (last) out.push('')
      return
    }
    out.push(segment)
  })
  return `/${out.join('/')}${q < 0 ? '' : target.slice(q)}`
}
