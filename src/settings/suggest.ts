// "Did you mean …?" for a mistyped flag or variable.

/**
 * The candidate closest to what was typed, if it is close (at most two edits, a third of its
 * length), or else the one candidate it begins (`--token` for --token-file).
 */
export function nearest (typed: string, candidates: readonly string[]): string | undefined {
  const lower = typed.toLowerCase()
  let best: string | undefined
  let bestDistance = Math.min(2, Math.floor(typed.length / 3))
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase())
    if (distance <= bestDistance) {
      best = candidate
      bestDistance = distance - 1
    }
  }
  if (best !== undefined || typed.length < 3) return best
  const begun = candidates.filter((c) => c.toLowerCase().startsWith(lower))
  return begun.length === 1 ? begun[0] : undefined
}

// Edits from a to b, a swap of two neighbours counting as one (`prot` is one edit from `port`).
function editDistance (a: string, b: string): number {
  let before: number[] = []
  let row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const next = [i]
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) next[j] = Math.min(next[j]!, before[j - 2]! + 1)
    }
    before = row
    row = next
  }
  return row[b.length]!
}
