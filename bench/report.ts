// The table `npm run bench` prints: medians per scenario, with ratios to nginx and kubectl proxy.
import type { Target } from './contenders.js'
import { SCENARIOS, type Samples } from './measure.js'
import { median } from './lib.js'

type Field = 'rps' | 'p50' | 'p99' | 'cpuPer1k'
const LABELS: Record<Field, string> = { rps: 'requests/s', p50: 'p50 ms', p99: 'p99 ms', cpuPer1k: 'CPU ms per 1,000 requests' }

// autocannon's latencies are whole milliseconds: a 0 is "under 1 ms", and no ratio can be taken of it.
export const ratio = (a: number | undefined, b: number | undefined) =>
  (a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && a !== 0 && b !== 0 ? `${(a / b).toFixed(2)}×` : '–')

export function medianOf (samples: Map<string, Samples>) {
  return (name: string, scenario: string, field: Field) => median(samples.get(`${name}|${scenario}`)?.[field] ?? [])
}

/** A Markdown table: one row per scenario and figure, one column per contender, then the two ratios. */
export function table (targets: Target[], samples: Map<string, Samples>, idleRss: Map<string, number>): string {
  const names = targets.map((t) => t.name)
  const med = medianOf(samples)
  const rows: string[][] = [['scenario', 'metric', ...names, 'mtls-proxy / nginx', 'mtls-proxy / kubectl proxy']]
  for (const scenario of SCENARIOS.map((s) => s.name)) {
    for (const field of ['rps', 'p50', 'p99', 'cpuPer1k'] as const) {
      if (field === 'cpuPer1k' && scenario !== '50 connections') continue
      const values = names.map((n) => med(n, scenario, field))
      const ours = med('mtls-proxy', scenario, field)
      rows.push([scenario, LABELS[field], ...values.map((v) => (Number.isFinite(v) ? (field === 'rps' ? String(Math.round(v)) : v.toFixed(0)) : '–')),
        ratio(ours, med('nginx', scenario, field)), ratio(ours, med('kubectl proxy', scenario, field))])
    }
  }
  const rss = (name: string) => idleRss.get(name)
  rows.push(['idle', 'RSS MB', ...names.map((n) => rss(n)?.toFixed(1) ?? '–'),
    ratio(rss('mtls-proxy'), rss('nginx')), ratio(rss('mtls-proxy'), rss('kubectl proxy'))])
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  const lines = rows.map((r) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`)
  lines.splice(1, 0, `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`)
  return lines.join('\n')
}
