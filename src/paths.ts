// The path a filter judges must be the path the API server acts on. So a target is decoded and
// its dot segments and empty segments resolved once, rules are matched on that, and exactly that
// (encoded again) is what goes upstream: `%2e%2e`, `//`, `/./` and encoded slashes cannot slip past.

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
export function originForm (target: string): string {
  if (target.startsWith('/')) return target
  try {
    const parsed = new URL(target)
    return parsed.pathname + parsed.search
  } catch {
    return target
  }
}

/** What goes upstream for a target: its normalised form (the caller's bytes when already normal). */
export function forwardTarget (target: string): string {
  const normal = normalizeTarget(originForm(target))
  return normal.ok ? normal.forward : originForm(target)
}

// Several clusters behind one port: `/clusters/<encodeURIComponent(name)>/…` names one.
const CLUSTER_PREFIX = '/clusters'

/**
 * A target in origin form split at the cluster it names: the name decoded (undefined when its
 * percent-encoding is malformed; '' when none is given), and the rest of the target, path and
 * query, as the client sent it. Undefined when the target names no cluster. Read from the raw
 * target: a name may hold `/` (EKS contexts do), encoded, which normalising would turn into a path.
 */
export function splitClusterPrefix (target: string): { name: string | undefined; rest: string } | undefined {
  if (!target.startsWith(CLUSTER_PREFIX)) return undefined
  const after = target.slice(CLUSTER_PREFIX.length)
  if (after !== '' && after[0] !== '/' && after[0] !== '?') return undefined
  const start = after[0] === '/' ? 1 : 0
  let end = start
  while (end < after.length && after[end] !== '/' && after[end] !== '?') end++
  let name: string | undefined
  try {
    name = decodeURIComponent(after.slice(start, end))
  } catch {
    name = undefined
  }
  const rest = after.slice(end)
  return { name, rest: rest.startsWith('/') ? rest : `/${rest}` }
}

/** The path filters judge: with several clusters, what follows the cluster prefix. */
export function withoutClusterPrefix (target: string, clusters: boolean): string {
  return clusters ? (splitClusterPrefix(target)?.rest ?? target) : target
}
