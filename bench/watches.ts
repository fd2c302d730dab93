// npm run bench:watches -- REV [REV …]: the memory 1,000 open watches add to each revision (a
// commit, `work`, or `REV@ARGS` as in bench:compare), on this machine's Node.js and on the image's,
// against the demo API server; the revisions take turns over BENCH_ROUNDS (3) rounds, medians.
// Each proxy idles IDLE_AFTER_MS first, so what is measured is the watches' own cost.
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startDemoApiServer } from '../src/demo/api-server.js'
import { benchFiles, benchNodes, buildSpecs, freePort, IDLE_AFTER_MS, log, median, proxyArgs, sleep, waitFor } from './lib.js'
import { watchMemory } from './measure.js'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const revisions = process.argv.slice(2)
if (revisions.length === 0) {
  log('usage: npm run bench:watches -- REV [REV …]   (a commit, a branch, `work` for the working tree)')
  process.exit(2)
}
const work = await mkdtemp(join(tmpdir(), 'mtls-proxy-watches-'))
const { pki, files } = await benchFiles(work)
const demo = await startDemoApiServer(pki)
const builds = await buildSpecs(revisions, work)

process.stdout.write('| Node.js | revision | RSS added by 1,000 open watches, MB (median, each round) |\n|---|---|---|\n')
for (const { label, bin } of await benchNodes()) {
  const added = new Map(builds.map((b) => [b.rev, [] as number[]]))
  for (let round = 0; round < ROUNDS; round++) {
    for (const { rev, cli, args, nodeFlags, env } of round % 2 ? builds : [...builds].reverse()) {
      const port = await freePort()
      const child = spawn(bin, [...nodeFlags, cli, ...proxyArgs(demo.url, files, port), '--no-access-log', ...args],
        { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, ...env } })
      await waitFor(`http://127.0.0.1:${port}/api/v1/namespaces/default/pods`)
      await sleep(IDLE_AFTER_MS)
      const { before, after } = await watchMemory({ port, pid: child.pid! }, () => demo.openWatches())
      added.get(rev)!.push(after - before)
      child.kill('SIGKILL')
      await new Promise((resolve) => child.once('exit', resolve))
    }
  }
  for (const { rev } of builds) {
    const xs = added.get(rev)!
    process.stdout.write(`| ${label} | ${rev} | +${median(xs).toFixed(1)} (${xs.map((x) => x.toFixed(1)).join(', ')}) |\n`)
  }
}
await demo.close()
await rm(work, { recursive: true, force: true })
process.exit(0)
