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

t.test('the README has the other-cluster sidecar\'s two forms, and the same-cluster one with its account and Role', async (t) => {
  t.same(kinds, ['apps/v1/Deployment', 'batch/v1/Job',
    'v1/ServiceAccount', 'rbac.authorization.k8s.io/v1/Role', 'rbac.authorization.k8s.io/v1/RoleBinding', 'apps/v1/Deployment'])
})

/** The objects that run pods. */
const workloads = (objects: Obj[]) => objects.filter((o) => o.spec?.template?.spec !== undefined)

t.test('each other-cluster sidecar: real settings, the key from a Secret mounted 0400 with an fsGroup, hardened', async (t) => {
  for (const { objects } of found) {
    for (const object of workloads(objects)) {
      const pod = object.spec.template.spec
      if (pod.serviceAccountName !== undefined) continue
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

t.test('the same-cluster sidecar: the pod\'s service account, a Role it is bound to, no credential given to the proxy', async (t) => {
  const { objects } = found.find((m) => m.objects.some((o) => o.kind === 'ServiceAccount'))!
  const [account, role, binding, deployment] = objects as [Obj, Obj, Obj, Obj]
  t.same(binding.subjects, [{ kind: 'ServiceAccount', name: account.metadata.name }], 'the binding names the account')
  t.same(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.metadata.name }, 'and the Role')
  t.notOk(role.rules.some((r: Obj) => r.verbs.includes('*') || r.resources.includes('*') || r.resources.includes('secrets')), 'least privilege')
  const pod = deployment.spec.template.spec
  t.equal(pod.serviceAccountName, account.metadata.name, 'the pod runs as the account')
  t.not(pod.automountServiceAccountToken, false, 'its token is mounted')
  const proxy = pod.containers.find((c: Obj) => c.name === 'mtls-proxy')
  for (const e of proxy.env) t.ok(envNames.has(e.name), `${e.name} is a real setting`)
  const given = proxy.env.map((e: Obj) => e.name)
  for (const credential of ['MTLS_PROXY_UPSTREAM', 'MTLS_PROXY_KUBECONFIG', 'MTLS_PROXY_CERT', 'MTLS_PROXY_UPSTREAM_TOKEN_FILE']) {
    t.notOk(given.includes(credential), `no ${credential}: the pod's own service account is the identity`)
  }
  t.equal(proxy.volumeMounts, undefined, 'nothing mounted but what the kubelet mounts')
  for (const c of pod.containers) t.equal(c.securityContext.readOnlyRootFilesystem, true, `${c.name}: read-only root filesystem`)
})

t.test('kubectl 1.32 takes each manifest (create --dry-run=client), against the demo API server', { skip: kubectl ? false : NO_KUBECTL }, async (t) => {
  const { pki, files } = await pkiWithFiles(t)
  const api = await startDemoUpstream(t, pki)
  const proxy = await startProxy(t, api.url, files)
  const home = await tempDir(t, 'kubectl')
  const env = { PATH: process.env.PATH, HOME: home, KUBECONFIG: join(home, 'none') }
  for (const { text, objects } of found) {
    const created = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(kubectl!, ['--server', proxy.url, '--cache-dir', join(home, 'cache'), 'create', '--dry-run=client', '-o', 'yaml', '-f', '-'],
        { env, timeout: 30_000 }, (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }))
      child.stdin!.end(text)
    })
    const name = objects.map((o) => `${o.kind} ${o.metadata.name}`).join(', ')
    t.equal(created.code, 0, `${name}: kubectl takes it (${created.stderr.trim()})`)
    if (created.code !== 0) continue
    // Each object as kubectl read it, several separated by ---.
    const items = parseAllDocuments(created.stdout).map((d) => d.toJS() as Obj)
    t.same(items.map((o) => o.kind), objects.map((o) => o.kind), `${name}: as the kinds they say`)
    for (const item of workloads(items)) {
      const volume = item.spec.template.spec.volumes?.[0]
      if (volume) t.equal(volume.secret.defaultMode, 0o400, `${name}: defaultMode 0400 read as kubectl reads it (256)`)
    }
  }
})
