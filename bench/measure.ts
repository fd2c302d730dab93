// What `npm run bench` measures, one function each: throughput and latency with the contenders
// taking turns, sequential curl calls, memory under 1,000 watches and a 1 GB upload, and the time
// from a certificate change on disk to its use.
import { execFileSync } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { Agent, request } from 'undici'
import type { DemoPki } from '../src/demo/pki.js'
import type { Bench, Target } from './contenders.js'
import { log, runLoad, sleep, usage } from './lib.js'

export const SCENARIOS = [
  { name: '50 connections', connections: 50 },
  { name: '20 connections', connections: 20 },
  { name: '1 connection', connections: 1 },
]

export interface Samples { rps: number[]; mean: number[]; p50: number[]; p99: number[]; cpuPer1k: number[]; errors: number }

const PODS = '/api/v1/namespaces/default/pods'

/** Each round runs every scenario against every contender, in alternating order so drift hits all alike. */
export async function throughput (targets: Target[], rounds: number, seconds: number): Promise<Map<string, Samples>> {
  const samples = new Map<string, Samples>()
  log(`${targets.length} contenders, ${rounds} rounds of ${SCENARIOS.length} scenarios × ${seconds} s`)
  for (let round = 1; round <= rounds; round++) {
    for (const scenario of SCENARIOS) {
      for (const t of round % 2 ? targets : [...targets].reverse()) {
        const before = t.pid ? await usage(t.pid) : undefined
        const r = await runLoad(`${t.url}${PODS}`, { connections: scenario.connections, seconds, tls: t.tls })
        const after = t.pid ? await usage(t.pid) : undefined
        const key = `${t.name}|${scenario.name}`
        const s = samples.get(key) ?? { rps: [], mean: [], p50: [], p99: [], cpuPer1k: [], errors: 0 }
        s.rps.push(r.rps)
        s.mean.push(r.mean)
        s.p50.push(r.p50)
        s.p99.push(r.p99)
        s.errors += r.errors + r.non2xx
        if (before && after) s.cpuPer1k.push(((after.cpu - before.cpu) * 1000) / (r.requests / 1000))
        samples.set(key, s)
        log(`round ${round} ${scenario.name.padEnd(15)} ${t.name.padEnd(14)} ${Math.round(r.rps)} req/s p50 ${r.p50} ms p99 ${r.p99} ms`)
      }
    }
  }
  return samples
}

/** 200 sequential curl calls: a new connection (and TLS handshake) each time; ms in all. */
export function curls (args: string[]): number {
  const t0 = performance.now()
  for (let i = 0; i < 200; i++) execFileSync('curl', ['-sf', '-o', '/dev/null', ...args])
  return performance.now() - t0
}

const rssMb = async (pid: number) => (await usage(pid)).rssKb / 1024

/** RSS of a proxy before and after 1,000 watches are opened through it. */
export async function watchMemory (proxy: { port: number; pid: number }, openUpstream: () => number) {
  const before = await rssMb(proxy.pid)
  const agent = new Agent({ connections: null })
  const watches = await Promise.all(Array.from({ length: 1000 }, async () => {
    const res = await request(`http://127.0.0.1:${proxy.port}${PODS}?watch=1`, { dispatcher: agent })
    res.body.on('data', () => { /* events */ })
    return res
  }))
  await sleep(1000)
  const after = await rssMb(proxy.pid)
  log(`1000 open watches: RSS ${before.toFixed(1)} → ${after.toFixed(1)} MB (${openUpstream()} open upstream)`)
  for (const w of watches) w.body.destroy()
  await agent.destroy()
  return { before, after }
}

/** RSS of a proxy while 1 GB goes through it to an upstream that drops it. */
export async function uploadMemory (proxy: { port: number; pid: number }) {
  const before = await rssMb(proxy.pid)
  let max = before
  const sampler = setInterval(() => { void rssMb(proxy.pid).then((mb) => { max = Math.max(max, mb) }) }, 100)
  const chunk = Buffer.alloc(1024 * 1024, 'x')
  const started = performance.now()
  await request(`http://127.0.0.1:${proxy.port}/api/v1/namespaces/default/configmaps`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: Readable.from((function * () { for (let i = 0; i < 1024; i++) yield chunk })()),
  }).then((r) => r.body.dump())
  const seconds = (performance.now() - started) / 1000
  clearInterval(sampler)
  log(`1 GB upload: ${seconds.toFixed(1)} s, RSS ${before.toFixed(1)} → max ${max.toFixed(1)} MB`)
  return { before, max, seconds }
}

/** A new certificate on disk until the next request goes out with it, in ms. */
export async function rotation (bench: Bench, pki: DemoPki, proxyUrl: string): Promise<number> {
  // A name of its own each time: the files may already hold an earlier run's rotated certificate.
  const commonName = `bench-rotated-${Date.now()}`
  const rotated = await pki.ca.issue({ commonName, usage: 'client' })
  const changed = performance.now()
  await writeFile(bench.files.cert, rotated.certPem)
  await writeFile(bench.files.key, rotated.keyPem)
  for (;;) {
    const res = await request(`${proxyUrl}/-/status`)
    if (((await res.body.json()) as { identity: string }).identity.includes(commonName)) break
    await sleep(5)
  }
  return performance.now() - changed
}
