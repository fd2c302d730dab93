// Kubernetes' own notion of a long-running request that streams until someone stops it: the old
// /watch/ paths, or a watch or follow parameter the API server reads as true. It reads a boolean
// parameter as false only when it is `0` or `false` (any case), so `watch=True`, `watch=yes` and a
// bare `watch` are all watches (apimachinery's Convert_Slice_string_To_bool). Names and values are
// read decoded, as Go's url.ParseQuery reads them (`%77atch=1` is a watch), and of a parameter
// given twice the first counts. (The path comes here normalised, admission/target.ts: its letters and slashes unencoded.)
const WATCH_PATH = /^\/(?:api|apis(?:\/[^/?]+)?)\/v[^/?]*\/watch\//
const FALSE = /^(?:0|false)$/i

export function isLongRunning (url: string): boolean {
  // Most requests name neither and encode nothing: substring searches spare them the rest.
  if (!url.includes('watch') && !url.includes('follow') && !url.includes('%')) return false
  if (WATCH_PATH.test(url)) return true
  const q = url.indexOf('?')
  if (q < 0) return false
  let watchSeen = false
  let followSeen = false
  for (const pair of url.slice(q + 1).split('&')) {
    // Go refuses a pair holding a semicolon, as it refuses one it cannot decode.
    if (pair.includes(';')) continue
    const eq = pair.indexOf('=')
    const name = queryDecoded(eq < 0 ? pair : pair.slice(0, eq))
    if (name === 'watch' ? watchSeen : name === 'follow' ? followSeen : true) continue
    const value = eq < 0 ? '' : queryDecoded(pair.slice(eq + 1))
    if (value === undefined) continue
    if (name === 'watch') watchSeen = true
    else followSeen = true
    if (!FALSE.test(value)) return true
  }
  return false
}

const BAD_ESCAPE = /%(?![0-9a-fA-F]{2})/
const ESCAPE = /%([0-9a-fA-F]{2})/g

/**
 * A query name or value as Go's QueryUnescape gives it ('+' is a space), byte by byte: Go checks
 * the hex digits, not that the bytes are UTF-8 (`watch=%FF` is a watch). Undefined where it fails.
 */
function queryDecoded (text: string): string | undefined {
  if (!text.includes('%') && !text.includes('+')) return text
  if (BAD_ESCAPE.test(text)) return undefined
  return text.replaceAll('+', ' ').replace(ESCAPE, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)))
}
