// An exec plugin still running when the proxy stops is ended with it: SIGTERM to its process group,
// then SIGKILL after a short grace, whether it runs for a cluster opened on first use or for the
// default cluster while the proxy starts. The real CLI, real plugins (shell scripts) that start a
// child of their own.
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { stringify } from 'yaml'
import { writeClientFiles } from '../../src/demo/pki.js'
import { startCli } from '../helpers/cli.js'
import { ROOT } from '../helpers/root.js'
import { bundledCli } from '../helpers/dist.js'
import { get } from '../helpers/http.js'
import { createDemoPki } from '../helpers/pki.js'
import { echoHandler, startUpstream } from '../helpers/upstream.js'
import { until } from '../helpers/until.js'
import { tempDir } from '../helpers/temp.js'

const pki = await createDemoPki()
const dir = await tempDir(t, 'plugin-stop')
await mkdir(join(dir, 'certs'))
await writeClientFiles(pki, join(dir, 'certs'))

/** A process that still runs: not gone, and not a zombie waiting for a parent that is gone. */
function alive (pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z'
  } catch {
    return false
  }
}

/** A plugin that notes its pid and its child's, then waits on the child; `stubborn` ignores SIGTERM. */
async function plugin (name: string, stubborn: boolean): Promise<{ command: string; pids: () => Promise<number[]> }> {
  const pids = join(dir, `${name}.pids`)
  const command = join(dir, `${name}.sh`)
  await writeFile(command, `#!/bin/sh\n${stubborn ? "trap '' TERM\n" : ''}sleep 60 &\necho $$ $! > '${pids}'\nwait\n`, { mode: 0o755 })
  return { command, pids: async () => (await readFile(pids, 'utf8')).trim().split(' ').map(Number) }
}

async function kubeconfig (name: string, server: string, command: string, pluginContext: 'dev' | 'lazy'): Promise<string> {
  const file = join(dir, name)
  const exec = { exec: { apiVersion: 'client.authentication.k8s.io/v1', command, interactiveMode: 'Never' } }
  await writeFile(file, stringify({
    'current-context': 'dev',
    clusters: [{ name: 'c', cluster: { server, 'certificate-authority': 'certs/ca.crt' } }],
    users: [{ name: 'files', user: { 'client-certificate': 'certs/client.crt', 'client-key': 'certs/client.key' } }, { name: 'plugin', user: exec }],
    contexts: [{ name: 'dev', context: { cluster: 'c', user: pluginContext === 'dev' ? 'plugin' : 'files' } },
      { name: 'lazy', context: { cluster: 'c', user: 'plugin' } }],
  }), { mode: 0o600 })
  return file
}

for (const stubborn of [false, true]) {
  t.test(`a cluster's plugin running at SIGTERM is ended with the proxy${stubborn ? ', killed when it ignores SIGTERM' : ''}`, async (t) => {
    const upstream = await startUpstream(t, pki, echoHandler)
    const { command, pids } = await plugin(`serving-${String(stubborn)}`, stubborn)
    const proxy = await startCli(t, ['--kubeconfig', await kubeconfig(`serving-${String(stubborn)}.yaml`, upstream.url, command, 'lazy'), '--all-contexts'])
    const waiting = get(`${proxy.url}/clusters/lazy/api`).catch(() => undefined)
    await until(() => existsSync(join(dir, `serving-${String(stubborn)}.pids`)), 10_000)
    const [leader, child] = await pids()
    t.ok(alive(leader!) && alive(child!), 'the plugin and its child run')
    proxy.child.kill('SIGTERM')
    t.equal((await proxy.exited).code, 0, 'the proxy stops as usual')
    await waiting
    await until(() => !alive(leader!) && !alive(child!), 5_000)
    t.pass('neither the plugin nor what it started is left running')
  })
}

t.test('the default cluster\'s plugin running while the proxy starts: SIGTERM ends both, with 128+15', async (t) => {
  const upstream = await startUpstream(t, pki, echoHandler)
  const { command, pids } = await plugin('starting', true)
  const file = await kubeconfig('starting.yaml', upstream.url, command, 'dev')
  const proxy = spawn(process.execPath, [await bundledCli(), '--kubeconfig', file, '--port', '0'],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] })
  t.teardown(() => { proxy.kill('SIGKILL') })
  let stderr = ''
  proxy.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const exited = new Promise<number | null>((resolve) => proxy.once('exit', (code) => resolve(code)))
  await until(() => existsSync(join(dir, 'starting.pids')), 10_000)
  const [leader, child] = await pids()
  proxy.kill('SIGTERM')
  t.equal(await exited, 143, stderr)
  t.equal(stderr, '', 'nothing said: a stop is no mistake')
  await until(() => !alive(leader!) && !alive(child!), 5_000)
  t.pass('the plugin and its child are gone')
})
