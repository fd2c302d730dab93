// npm run bench:startup -- REV [REV …]: start-up and memory of each revision (a commit, `work`;
// `REV@ARGS` as in bench:compare, `work@env:MALLOC_TRIM_THRESHOLD_=131072`), on this machine's
// Node.js and on the image's, the revisions taking turns. Each start is timed
// from spawn to the first proxied 200 (polled every 5 ms) against the demo API server; the
// process then idles 6 s (IDLE_AFTER_MS, past the first periodic readiness probe), and its RSS and
// private memory (RssAnon) are read. Medians of BENCH_ROUNDS (7) starts; about 7 s per start.
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startDemoApiServer } from '../src/demo/api-server.js'
import {
  benchFiles, benchNodes, buildSpecs, freePort, IDLE_AFTER_MS, log, median, proxyArgs, sleep, usage, waitFor,
} from './lib.js'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7)
const revisions = process.argv.slice(2)
if (revisions.length === 0) {
  log('usage: npm run bench:startup -- REV [REV …]   (a commit, a branch, `work` for the working tree)')
  process.exit(2)
}
const work = await mkdtemp(join(tmpdir(), 'mtls-proxy-startup-'))
const { pki, files } = await benchFiles(work)
const api = await startDemoApiServer(pki)
const builds = await buildSpecs(revisions, work)

process.stdout.write('| Node.js | revision | first proxied 200, ms (median, min) | idle RSS, MB | idle private (RssAnon), MB |\n|---|---|---|---|---|\n')
for (const { label, bin } of await benchNodes()) {
  const results = new Map(builds.map((b) => [b.rev, { first: [] as number[], rss: [] as number[], anon: [] as number[] }]))
  for (let round = 0; round < ROUNDS; round++) {
    for (const { rev, cli, args, nodeFlags, env } of round % 2 ? builds : [...builds].reverse()) {
      const port = await freePort()
      const started = performance.now()
      const child = spawn(bin, [...nodeFlags, cli, ...proxyArgs(api.url, files, port), ...args],
        { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, ...env } })
      await waitFor(`http://127.0.0.1:${port}/api/v1/namespaces/default/pods`, 15_000, undefined, 5)
      const r = results.get(rev)!
      r.first.push(performance.now() - started)
      await sleep(IDLE_AFTER_MS)
      const u = await usage(child.pid!)
      r.rss.push(u.rssKb / 1024)
      r.anon.push(u.anonKb / 1024)
      child.kill('SIGKILL')
      await new Promise((resolve) => child.once('exit', resolve))
    }
  }
  for (const { rev } of builds) {
    const r = results.get(rev)!
    process.stdout.write(`| ${label} | ${rev} | ${Math.round(median(r.first))} (${Math.round(Math.min(...r.first))}) | ` +
      `${median(r.rss).toFixed(1)} | ${median(r.anon).toFixed(1)} |\n`)
  }
}
await api.close()
await rm(work, { recursive: true, force: true })
process.exit(0)
