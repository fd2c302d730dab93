// Time from starting the built CLI (dist/cli.js) to its first proxied 200, and to a certificate
// rotation taking effect. Median of a few runs against the demo API server.
// Run: npm run build && node --import tsx bench/startup.ts
import { spawn } from 'node:child_process'
import { rm, writeFile } from 'node:fs/promises'
import { request } from 'undici'
import { startDemoApiServer } from '../src/demo/api-server.js'
import { createDemoPki, writeClientFiles } from '../src/demo/pki.js'

const ROUNDS = 5
const pki = await createDemoPki()
const files = await writeClientFiles(pki)
const api = await startDemoApiServer(pki)

async function until(check: () => Promise<boolean>): Promise<void> {
  for (;;) {
    if (await check().catch(() => false)) return
    await new Promise((r) => setTimeout(r, 2))
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const firstOk: number[] = []
const rotation: number[] = []
for (let round = 0; round < ROUNDS; round++) {
  const port = 18_100 + round
  const started = performance.now()
  const child = spawn(process.execPath, ['dist/cli.js', '--upstream', api.url, '--cacert', files.cacert, '--cert', files.cert, '--key', files.key, '--port', String(port), '--log-level', 'warn'], { stdio: 'ignore' })
  await until(async () => (await request(`http://127.0.0.1:${port}/api/v1/namespaces/default/pods`).then(async (r) => { await r.body.dump(); return r.statusCode })) === 200)
  firstOk.push(performance.now() - started)

  const next = await pki.ca.issue({ commonName: `rotated-${round}`, usage: 'client' })
  const changed = performance.now()
  await writeFile(files.cert, next.certPem)
  await writeFile(files.key, next.keyPem)
  await until(async () => {
    const r = await request(`http://127.0.0.1:${port}/-/status`)
    return ((await r.body.json()) as { identity: string }).identity.includes(`rotated-${round}`)
  })
  rotation.push(performance.now() - changed)
  child.kill('SIGTERM')
  await new Promise((r) => child.once('exit', r))
}
console.log(JSON.stringify({ rounds: ROUNDS, firstProxied200Ms: Math.round(median(firstOk)), rotationInUseMs: Math.round(median(rotation)), all: { firstOk: firstOk.map(Math.round), rotation: rotation.map(Math.round) } }))
await api.close()
await rm(files.dir, { recursive: true, force: true })
