// npm run bench:run-mode -- REV [REV …]: how long `mtls-proxy [settings] -- COMMAND` takes for a
// command that makes one request through the proxy, from spawn to exit, for each revision (a commit,
// `work`), the revisions taking turns. The command is a Node.js one-liner that asks for the demo API
// server's pods at MTLS_PROXY_URL, with MTLS_PROXY_CACERT and MTLS_PROXY_TOKEN where the revision gives
// them, so the same command measures a plain-HTTP run and one with its own key pair and token.
// Medians of BENCH_ROUNDS (11) runs.
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startDemoApiServer } from '../src/demo/api-server.js'
import { benchFiles, buildSpecs, log, median } from './lib.js'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 11)
const revisions = process.argv.slice(2)
if (revisions.length === 0) {
  log('usage: npm run bench:run-mode -- REV [REV …]   (a commit, a branch, `work` for the working tree)')
  process.exit(2)
}

// One request, as a script inside the command would make it: CA and token when given.
const COMMAND = `
const { readFileSync } = require('node:fs')
const url = process.env.MTLS_PROXY_URL + '/api/v1/namespaces/default/pods'
const ca = process.env.MTLS_PROXY_CACERT ? readFileSync(process.env.MTLS_PROXY_CACERT) : undefined
const headers = process.env.MTLS_PROXY_TOKEN ? { authorization: 'Bearer ' + process.env.MTLS_PROXY_TOKEN } : {}
require(url.startsWith('https') ? 'node:https' : 'node:http').get(url, { ca, headers }, (res) => {
  res.resume()
  res.on('end', () => process.exit(res.statusCode === 200 ? 0 : 1))
}).on('error', () => process.exit(1))
`

const work = await mkdtemp(join(tmpdir(), 'mtls-proxy-run-mode-'))
const { pki, files } = await benchFiles(work)
const api = await startDemoApiServer(pki)
const builds = await buildSpecs(revisions, work)

function timed (argv: string[]): Promise<number> {
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'inherit'] })
    child.once('exit', (code) => (code === 0 ? resolve(performance.now() - started) : reject(new Error(`${argv.join(' ')} exited ${code}`))))
  })
}

const results = new Map(builds.map((b) => [b.rev, [] as number[]]))
const settings = ['--upstream', api.url, '--cacert', files.cacert, '--cert', files.cert, '--key', files.key]
for (let round = 0; round < ROUNDS; round++) {
  for (const { rev, cli, args, nodeFlags } of round % 2 ? builds : [...builds].reverse()) {
    results.get(rev)!.push(await timed([process.execPath, ...nodeFlags, cli, ...settings, ...args, '--', process.execPath, '-e', COMMAND]))
  }
}
process.stdout.write('| revision | `-- COMMAND` for one request, spawn to exit, ms (median, min) |\n|---|---|\n')
for (const { rev } of builds) {
  const r = results.get(rev)!
  process.stdout.write(`| ${rev} | ${Math.round(median(r))} (${Math.round(Math.min(...r))}) |\n`)
}
await api.close()
await rm(work, { recursive: true, force: true })
process.exit(0)
