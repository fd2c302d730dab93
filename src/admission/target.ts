// The path a filter judges must be the path the API server acts on. So a target is decoded and
// its dot segments and empty segments resolved once, rules are matched on that, and exactly that
// (encoded again) is what goes upstream: `%2e%2e`, `//`, `/./` and encoded slashes cannot slip past.
// A request's target is read once, at the first hook that sees it (readTarget), into one value that
// the guard, cluster routing, CORS, the relay, the tunnels and the redirect check all read.
import { isLongRunning } from './long-running.js'

/** A request's target, read once. */
export interface RequestTarget {
  /** exactly as the client sent it */
  raw: string
  /** path and query: an absolute-form target reduced to them */
  origin: string
  /** it names a cluster with /clusters/NAME */
  prefixed: boolean
  /** the prefix as the client wrote it ('' for none, or a name not served): what it would use again to reach the same cluster */
  prefix: string
  /** the cluster named: a served one's name, else the first segment decoded (undefined: malformed percent-encoding) */
  name: string | undefined
  /** what follows the prefix (the whole origin form without one), path and query, as sent */
  rest: string
  /** that path decoded and resolved: what the rules judge; undefined when it cannot be (see `problem`) */
  path: string | undefined
  /** why the path cannot be judged (malformed encoding, control characters, climbing above the root) */
  problem: string | undefined
  /** what goes upstream: the path encoded again plus the query (the caller's bytes when already normal) */
  forward: string
  /** streams until stopped (a watch, a followed log) */
  watch: boolean
}

/** Reads a target (origin or absolute form, as a client sends it); `split` finds the cluster prefix when several are served. */
export function readTarget (raw: string, split?: (origin: string) => ClusterSplit | undefined): RequestTarget {
  const origin = originForm(raw)
  const named = split?.(origin)
  const rest = named ? named.rest : origin
  const normal = normalizeTarget(rest)
  const forward = normal.ok ? normal.forward : rest
  return {
    raw,
    origin,
    prefixed: named !== undefined,
    prefix: named?.served ? named.prefix : '',
    name: named?.name,
    rest,
    path: normal.ok ? normal.path : undefined,
    problem: normal.ok ? undefined : normal.message,
    forward,
    watch: isLongRunning(forward),
  }
}

export type NormalizedTarget =
  | {
    ok: true
    /** decoded, resolved: what rules match */
    path: string
    /** encoded form of path, plus the query as sent */
    forward: string
  }
  | { ok: false; message: string }

// Characters a path segment may carry unencoded (RFC 3986 pchar).
const PCHAR = /[^A-Za-z0-9\-._~!$&'()*+,;=:@]/g

function encodeSegment (segment: string): string {
  return segment.replace(PCHAR, (c) => encodeURIComponent(c))
}

export function normalizeTarget (target: string): NormalizedTarget {
  const q = target.indexOf('?')
  const rawPath = q < 0 ? target : target.slice(0, q)
  const query = q < 0 ? '' : target.slice(q)
  // Most requests are already normal: leave them byte for byte as the caller sent them.
  if (!/%|\/\/|\/\.\.?(?:\/|$)|\\/.test(rawPath)) return { ok: true, path: rawPath, forward: target }

  let decoded: string
  try {
    decoded = decodeURIComponent(rawPath)
  } catch {
    return { ok: false, message: `malformed percent-encoding in path '${rawPath.slice(0, 100)}'` }
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(decoded)) return { ok: false, message: 'control characters in the path are refused' }
  const segments: string[] = []
  for (const segment of decoded.split(/[/\\]/)) {
    if (segment === '' || segment === '.') continue
    if (segment === '..') {
      if (segments.length === 0) return { ok: false, message: `path '${rawPath.slice(0, 100)}' climbs above the root` }
      segments.pop()
      continue
    }
    segments.push(segment)
  }
  const trailing = segments.length > 0 && /[/\\]$/.test(decoded) ? '/' : ''
  const path = `/${segments.join('/')}${trailing}`
  return { ok: true, path, forward: `/${segments.map(encodeSegment).join('/')}${trailing}${query}` }
}

/** Path and query of an absolute-form target, so routing sees what the guard accepted. */
function originForm (target: string): string {
  if (target.startsWith('/')) return target
  try {
    const parsed = new URL(target)
    return parsed.pathname + parsed.search
  } catch {
    return target
  }
}

// Several clusters behind one port: `/clusters/<name>/…` names one.
const CLUSTER_PREFIX = '/clusters'

/** A target in origin form split at the cluster it names. */
export interface ClusterSplit {
  /** a served cluster's name; else the first segment decoded, for messages (undefined: malformed percent-encoding) */
  name: string | undefined
  /** `name` is a served cluster's */
  served: boolean
  /** the prefix as the client wrote it (`/clusters/` and the name's raw segments), to put back in front of a path */
  prefix: string
  /** the rest of the target, path and query, as the client sent it */
  rest: string
}

/**
 * A target in origin form split at the cluster it names, read from the raw target before anything is
 * normalised: the longest served name that ends at a segment boundary, however the client escaped it.
 * EKS names contexts `arn:…:cluster/NAME`: curl sends the `/` as `%2F`, kubectl decodes it from
 * --server and sends it bare, and both must reach the same cluster. Undefined when the target names
 * no cluster. `served` is asked only of names up to `longest` characters, so a hostile target of many
 * slashes costs no more than the longest name.
 */
export function splitClusterPrefix (target: string, served: (name: string) => boolean, longest: number): ClusterSplit | undefined {
  if (!target.startsWith(CLUSTER_PREFIX)) return undefined
  const next = target[CLUSTER_PREFIX.length]
  if (next !== undefined && next !== '/' && next !== '?') return undefined
  const start = CLUSTER_PREFIX.length + (next === '/' ? 1 : 0)
  let first: { end: number; name: string | undefined } | undefined
  let match: { end: number; name: string } | undefined
  let name = ''
  for (let from = start; ;) {
    let end = from
    while (end < target.length && target[end] !== '/' && target[end] !== '?') end++
    let segment: string | undefined
    try {
      segment = decodeURIComponent(target.slice(from, end))
    } catch {
      segment = undefined
    }
    // A literal `/` decodes to itself: the name so far, one segment longer.
    if (segment !== undefined) name = from === start ? segment : `${name}/${segment}`
    first ??= { end, name: segment === undefined ? undefined : name }
    if (segment === undefined) break
    if (name.length <= longest && served(name)) match = { end, name }
    if (end >= target.length || target[end] === '?' || name.length > longest) break
    from = end + 1
  }
  const { end, name: chosen } = match ?? first
  const rest = target.slice(end)
  return { name: chosen, served: match !== undefined, prefix: target.slice(0, end), rest: rest.startsWith('/') ? rest : `/${rest}` }
}

/**
 * Why a name cannot be a cluster's, or undefined when it can. Its `/`-separated segments go into the
 * path as they are (kubectl decodes `%2F` from --server), so none may be empty, `.` or `..`: every
 * client would resolve those away before the proxy saw them.
 */
export function clusterNameProblem (name: string): string | undefined {
  if (name.length > MAX_CLUSTER_NAME) return `it is longer than ${MAX_CLUSTER_NAME} characters`
  if (name.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    return 'an empty, \'.\' or \'..\' segment of it would be resolved away by clients, which kubectl does even to an encoded /'
  }
  return undefined
}

// Far beyond any real context name (Kubernetes names stop at 253); bounds the routing of each request.
const MAX_CLUSTER_NAME = 1000
