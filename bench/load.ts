// One load run, as its own process so it does not share a core with what it measures:
//   node --import tsx bench/load.ts URL CONNECTIONS SECONDS [CA CERT KEY]
// Prints one JSON line: requests/s, latency p50/p99 (ms), totals.
import { readFileSync } from 'node:fs'
import autocannon from 'autocannon'

const [url, connections, seconds, ca, cert, key] = process.argv.slice(2) as [string, string, string, string?, string?, string?]
const result = await autocannon({
  url,
  connections: Number(connections),
  duration: Number(seconds),
  pipelining: 1,
  ...(cert ? { tlsOptions: { ca: readFileSync(ca!), cert: readFileSync(cert), key: readFileSync(key!) } } : {}),
})
process.stdout.write(`${JSON.stringify({
  rps: result.requests.average,
  // autocannon's percentiles are whole milliseconds; the mean keeps the fraction.
  mean: result.latency.average,
  p50: result.latency.p50,
  p99: result.latency.p99,
  requests: result.requests.total,
  errors: result.errors + result.timeouts,
  non2xx: result.non2xx,
  loadCpu: NaN,
})}\n`)
