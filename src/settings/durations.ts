// Durations as Kubernetes manifests and kubectl write them (Go's time.ParseDuration: `500ms`,
// `30s`, `5m`, `1h`, `1m30s`), or a plain number of seconds.

const UNIT_SECONDS: Record<string, number> = { ns: 1e-9, us: 1e-6, µs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 }
// Whole string, each part a number and a unit: linear, no nested quantifier can backtrack.
const DURATION = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/
const PART = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g

/** Seconds, or undefined when the text is neither a duration nor a number. */
export function parseDuration (text: string): number | undefined {
  const trimmed = text.trim()
  if (/^\d+(?:\.\d+)?$/.test(trimmed)) return Number(trimmed)
  if (!DURATION.test(trimmed)) return undefined
  let seconds = 0
  for (const [, amount, unit] of trimmed.matchAll(PART)) seconds += Number(amount) * UNIT_SECONDS[unit!]!
  return seconds
}

/** How a default in seconds is shown: 30s, 5m, 1h. */
export function formatDuration (seconds: number): string {
  if (seconds !== 0 && seconds % 3600 === 0) return `${seconds / 3600}h`
  if (seconds !== 0 && seconds % 60 === 0) return `${seconds / 60}m`
  return `${seconds}s`
}
