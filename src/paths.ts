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
