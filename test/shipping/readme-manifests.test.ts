// Every Kubernetes manifest in the README is one kubectl takes: each ```yaml block holding objects is
// read by kubectl 1.32 (`create --dry-run=client -f -`, against the demo API server through the
// proxy), names real settings, and the sidecar forms are what the text says they are.
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { ROOT } from '../helpers/root.js'
import { findKubectl, NO_KUBECTL } from '../helpers/kubectl.js'
import { pkiWithFiles } from '../helpers/pki.js'
import { startDemoUpstream } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'
import { tempDir } from '../helpers/temp.js'
import { OPTIONS, envName } from '../../src/settings/options.js'

const kubectl = findKubectl()
const envNames = new Set(OPTIONS.map((o) => envName(o.name)))

type Obj = Record<string, any>

/** The README's ```yaml blocks that hold Kubernetes objects (the alert rules do not), as written and as read. */
function manifests (): Array<{ text: string; objects: Obj[] }> {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const blocks = [...readme.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((m) => m[1]!)
  return blocks.map((text) => {
    // YAML 1.1, as kubectl reads it: `defaultMode: 0400` is octal there.
    const docs = parseAllDocuments(text, { version: '1.1' })
    return { text, docs }
  }).filter(({ docs }) => docs.some((d) => d.get('apiVersion') !== undefined && d.get('kind') !== undefined))
    .map(({ text, docs }) => {
      for (const d of docs) if (d.errors.length > 0) throw new Error(`README manifest: ${d.errors[0]!.message}`)
      return { text, objects: docs.map((d) => d.toJS() as Obj) }
    })
}

const found = manifests()
const kinds = found.flatMap((m) => m.objects.map((o) => `${o.apiVersion}/${o.kind}`))

t.test('the README has the sidecar\'s two forms', async (t) => {
  t.same(kinds, ['apps/v1/Deployment', 'batch/v1/Job'])
})

t.test('each sidecar: real settings, the key from a Secret mounted 0400 with an fsGroup, hardened', async (t) => {
  for (const { objects } of found) {
    for (const object of objects) {
      const pod = object.spec.template.spec
      const name = `${object.kind} ${object.metadata.name}`
      const proxies = [...(pod.initContainers ?? []), ...pod.containers].filter((c: Obj) => c.name === 'mtls-proxy')
      t.equal(proxies.length, 1, `${name}: one mtls-proxy container`)
      const proxy = proxies[0]
      for (const e of proxy.env) t.ok(envNames.has(e.name), `${name}: ${e.name} is a real setting`)
      const volume = pod.volumes.find((v: Obj) => v.name === proxy.volumeMounts[0].name)
      t.equal(volume.secret.defaultMode, 0o400, `${name}: the Secret mounted 0400`)
      t.ok(pod.securityContext.fsGroup !== undefined, `${name}: with an fsGroup (so the key is 0440, for the pod's group)`)
      t.equal(pod.securityContext.runAsNonRoot, true)
      for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
        t.equal(c.securityContext.readOnlyRootFilesystem, true, `${name} ${c.name}: read-only root filesystem`)
        t.equal(c.securityContext.allowPrivilegeEscalation, false, `${name} ${c.name}: no privilege escalation`)
      }
      if (object.kind === 'Job') {
        t.equal(proxy.restartPolicy, 'Always', 'the Job\'s sidecar is a native one: an init container that keeps running')
        t.ok(pod.initContainers.includes(proxy), 'among the init containers')
        t.not(pod.restartPolicy, 'Always', 'the Job\'s pod ends')
      }
    }
  }
})

t.test('kubectl 1.32 takes each manifest (create --dry-run=client), against the demo API server', { skip: kubectl ? false : NO_KUBECTL }, async (t) => {
  const { pki, files } = await pkiWithFiles(t)
  const api = await startDemoUpstream(t, pki)
  const proxy = await startProxy(t, api.url, files)
  const home = await tempDir(t, 'kubectl')
  const env = { PATH: process.env.PATH, HOME: home, KUBECONFIG: join(home, 'none') }
  for (const { text, objects } of found) {
    const created = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(kubectl!, ['--server', proxy.url, '--cache-dir', join(home, 'cache'), 'create', '--dry-run=client', '-o', 'json', '-f', '-'],
        { env, timeout: 30_000 }, (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }))
      child.stdin!.end(text)
    })
    const name = objects.map((o) => `${o.kind} ${o.metadata.name}`).join(', ')
    t.equal(created.code, 0, `${name}: kubectl takes it (${created.stderr.trim()})`)
    if (created.code !== 0) continue
    const read = JSON.parse(created.stdout) as Obj
    t.equal(read.kind, objects[0]!.kind, `${name}: as the kind it says`)
    const volume = read.spec.template.spec.volumes[0]
    t.equal(volume.secret.defaultMode, 0o400, `${name}: defaultMode 0400 read as kubectl reads it (256)`)
  }
})
