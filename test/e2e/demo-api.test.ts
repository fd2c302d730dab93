// The demo API server is believable for pods, so every README command works against it through the
// proxy: get (tables), watch with real events, create, apply, label, patch, logs (-f), exec,
// describe, delete; namespaces to list; stable UIDs.
import { execFile, spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { pkiWithFiles } from '../helpers/pki.js'
import { startProxy } from '../helpers/proxy.js'
import { get } from '../helpers/http.js'
import { findKubectl, NO_KUBECTL } from '../helpers/kubectl.js'
import { startDemoUpstream } from '../helpers/upstream.js'
import { until } from '../helpers/until.js'
import { tempDir } from '../helpers/temp.js'

const run = promisify(execFile)
const kubectl = findKubectl()

const POD = `apiVersion: v1
kind: Pod
metadata:
  name: hello
  labels: { app: hello }
spec:
  containers:
    - name: app
      image: nginx:1.27
    - name: side
      image: busybox:1.36
`

t.test('the README\'s kubectl commands, against the demo through the proxy', { skip: kubectl ? false : NO_KUBECTL }, async (t) => {
  const { pki, files } = await pkiWithFiles(t)
  const api = await startDemoUpstream(t, pki)
  const proxy = await startProxy(t, api.url, files)
  const home = await tempDir(t, 'kubectl')
  const manifest = join(home, 'pod.yaml')
  await writeFile(manifest, POD)
  const env = { PATH: process.env.PATH, HOME: home, KUBECONFIG: join(home, 'none') }
  const base = ['--server', proxy.url, '--cache-dir', join(home, 'cache')]
  const k = async (...args: string[]) => (await run(kubectl!, [...base, ...args], { env, timeout: 30_000 })).stdout

  t.match(await k('get', 'ns'), /^NAME\s+STATUS\s+AGE\ndefault\s+Active/m, 'namespaces')
  t.match(await k('create', '-f', manifest), /pod\/hello created/, 'create -f (the server validates fields: no schema download)')
  const uid = await k('get', 'pod', 'hello', '-o', 'jsonpath={.metadata.uid}')
  t.equal(await k('get', 'pod', 'hello', '-o', 'jsonpath={.metadata.uid}'), uid, 'the uid is stable')
  t.match(await k('get', 'pod', 'hello'), /^hello\s+2\/2\s+Running\s+0\s+\d+s$/m, 'a table for one pod')
  t.match(await k('label', 'pod', 'hello', 'tier=frontend'), /pod\/hello labeled/)
  t.match(await k('patch', 'pod', 'hello', '--type', 'merge', '-p', '{"metadata":{"annotations":{"note":"patched"}}}'), /pod\/hello patched/)
  t.equal(await k('get', 'pod', 'hello', '-o', 'jsonpath={.metadata.labels.tier} {.metadata.annotations.note}'), 'frontend patched')
  t.match(await k('apply', '-f', manifest), /pod\/hello configured/, 'apply')
  await writeFile(manifest, POD.replace('nginx:1.27', 'nginx:1.28'))
  t.match(await k('apply', '-f', manifest), /pod\/hello configured/, 'apply a changed image')
  t.equal(await k('get', 'pod', 'hello', '-o', 'jsonpath={.spec.containers[*].name}={.spec.containers[*].image}'), 'app side=nginx:1.28 busybox:1.36', 'a strategic merge: containers merged by name, in order')
  t.match(await k('set', 'image', 'pod/hello', 'side=busybox:1.37'), /image updated/)
  t.equal(await k('get', 'pod', 'hello', '-o', 'jsonpath={.spec.containers[*].image}'), 'nginx:1.28 busybox:1.37')
  t.notMatch(await k('get', 'pod', 'hello', '-o', 'json'), /\$setElementOrder|\$patch/, 'no patch directive stored as data')
  t.match(await k('describe', 'pod', 'hello'), /Name:\s+hello[\s\S]*Labels:\s+app=hello/, 'describe')
  t.match(await k('logs', 'hello'), /hello: ready/, 'logs')
  t.equal(await k('exec', 'hello', '--', 'echo', 'hi'), 'hi\n', 'exec')
  const exists = await run(kubectl!, [...base, 'create', '-f', manifest], { env }).then(() => '', (err: { stderr: string }) => err.stderr)
  t.match(exists, /Error from server \(AlreadyExists\).*pods "hello" already exists/, 'a second create: AlreadyExists')

  // A watch sees real changes, in order, after the current state.
  const watch = spawn(kubectl!, [...base, 'get', 'pods', '--watch', '--output-watch-events'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { watch.kill() })
  let seen = ''
  watch.stdout.on('data', (d: Buffer) => { seen += d })
  await until(() => /ADDED\s+hello/.test(seen), 10_000)
  await k('label', 'pod', 'hello', 'tier=backend', '--overwrite')
  await until(() => /MODIFIED\s+hello/.test(seen), 10_000)
  t.match(await k('delete', 'pod', 'hello'), /pod "hello" deleted/)
  await until(() => /DELETED\s+hello/.test(seen), 10_000)
  t.pass('ADDED, MODIFIED, DELETED reached kubectl --watch')

  // logs -f streams until the client stops.
  const follow = spawn(kubectl!, [...base, 'logs', '-f', 'db-0'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { follow.kill() })
  let logged = ''
  follow.stdout.on('data', (d: Buffer) => { logged += d })
  await until(() => /db-0: tick 1/.test(logged), 10_000)
  t.pass('logs -f streams new lines')
  t.notMatch(await k('get', 'pods'), /hello/, 'gone from the list')
})

t.test('watch from a resourceVersion gets what changed since, not the whole list again', async (t) => {
  const { pki, files } = await pkiWithFiles(t)
  const api = await startDemoUpstream(t, pki)
  const proxy = await startProxy(t, api.url, files)
  const list = (await get(`${proxy.url}/api/v1/namespaces/default/pods`)).json<{ metadata: { resourceVersion: string } }>()
  api.addPod('later')
  const res = await get(`${proxy.url}/api/v1/namespaces/default/pods?watch=1&resourceVersion=${list.metadata.resourceVersion}&timeoutSeconds=1`)
  const events = res.body.trim().split('\n').map((l) => JSON.parse(l) as { type: string; object: { metadata: { name: string } } })
  t.same(events.map((e) => `${e.type} ${e.object.metadata.name}`), ['ADDED later'])
})

t.test('merge patches and strategic merge patches, as the demo applies them', async (t) => {
  const { mergePatch, strategicMerge } = await import('../../src/demo/store.js')
  const pod = { metadata: { labels: { a: '1', b: '2' } }, spec: { containers: [{ name: 'app', image: 'x:1' }, { name: 'side', image: 'y:1' }] } }
  t.same(mergePatch(pod, { metadata: { labels: { a: null, c: '3' } } }), { ...pod, metadata: { labels: { b: '2', c: '3' } } }, 'merge: null deletes, objects merge')
  t.same((mergePatch(pod, { spec: { containers: [{ name: 'app', image: 'x:2' }] } }) as typeof pod).spec.containers, [{ name: 'app', image: 'x:2' }], 'merge: a list replaces')
  t.same((strategicMerge(pod, { spec: { containers: [{ name: 'app', image: 'x:2' }] } }) as typeof pod).spec.containers, [{ name: 'app', image: 'x:2' }, { name: 'side', image: 'y:1' }], 'strategic: merged by name')
  t.same((strategicMerge(pod, { spec: { '$setElementOrder/containers': [{ name: 'side' }, { name: 'app' }], containers: [{ name: 'side', $patch: 'delete' }] } }) as typeof pod).spec, { containers: [{ name: 'app', image: 'x:1' }] }, 'strategic: $patch delete, directives not stored')
  t.same(Object.getPrototypeOf(mergePatch({}, JSON.parse('{"__proto__": {"polluted": 1}}'))), Object.prototype, 'no prototype pollution')
})
