// Durations as Kubernetes manifests write them, or seconds (src/settings/durations.ts); what loads
// them from flags, variables and the config file is test/unit/settings/config.test.ts.
import t from 'tap'
import { formatDuration, parseDuration } from '../../../src/settings/durations.js'

t.test('read as Go\'s time.ParseDuration reads them, or as a number of seconds', async (t) => {
  const cases: Array<[string, number]> = [
    ['30', 30],
    ['1.5', 1.5],
    ['0', 0],
    [' 30s ', 30],
    ['0s', 0],
    ['500ms', 0.5],
    ['1m30s', 90],
    ['1h', 3600],
    ['1h30m', 5400],
    ['1.5h', 5400],
    ['2h45m30.5s', 9930.5],
    ['1m0s', 60],
    ['1s1s', 2],
  ]
  for (const [text, seconds] of cases) t.equal(parseDuration(text), seconds, `'${text}'`)
  // Below a millisecond, in floating point.
  for (const [text, seconds] of [['100us', 1e-4], ['100\u00b5s', 1e-4], ['10ns', 1e-8]] as const) {
    t.ok(Math.abs(parseDuration(text)! - seconds) < 1e-15, `'${text}' is ${seconds} s`)
  }
})

t.test('anything else is no duration', async (t) => {
  for (const text of ['', ' ', 's', '-1s', '+1s', '1d', '1w', '1 s', '5 m', '1S', '1H', '.5s', '1.s', '1e3', '0x10', 'Infinity', 'NaN', '1h-2m', '30x', '1s ms']) {
    t.equal(parseDuration(text), undefined, `'${text}'`)
  }
  // Linear: a long near-miss ends at once rather than backtracking (a hang here is tap's timeout).
  t.equal(parseDuration(`${'1'.repeat(50_000)}x`), undefined)
  t.equal(parseDuration('1s'.repeat(50_000)), 50_000)
})

t.test('a default shown in --help and the README: the largest whole unit', async (t) => {
  const cases: Array<[number, string]> = [[30, '30s'], [90, '90s'], [300, '5m'], [3600, '1h'], [7200, '2h'], [5400, '90m'], [0, '0s'], [0.5, '0.5s']]
  for (const [seconds, text] of cases) t.equal(formatDuration(seconds), text, `${seconds} s`)
  for (const [seconds] of cases) t.equal(parseDuration(formatDuration(seconds)), seconds, `${formatDuration(seconds)} reads back as ${seconds} s`)
})
