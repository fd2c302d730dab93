// The bundle as it ships (dist/cli.js, config/bundle.mjs): it serves, and what it holds behind a
// stand-in is never loaded by serving.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { bundledCli } from '../helpers/dist.js'
import { get } from '../helpers/http.js'
import { freePort } from '../helpers/net.js'
import { pkiWithFiles } from '../helpers/pki.js'
import { clientFlags } from '../helpers/proxy.js'
import { echoHandler, startUpstream } from '../helpers/upstream.js'
import { until } from '../helpers/until.js'

t.test('a start loads no module serving does not use: node:http2, node:fs/promises, node:zlib', async (t) => {
  const { pki, files } = await pkiWithFiles(t)
  const upstream = await startUpstream(t, pki, echoHandler)
  // Node.js lists every built-in module a process loaded: written as the proxy exits.
  const list = join(files.dir, 'modules.txt')
  const preload = join(files.dir, 'modules.cjs')
  await writeFile(preload, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(list)}, process.moduleLoadList.join('\\n')))\n`)
  const port = await freePort()
  const child = spawn(process.execPath, ['--require', preload, await bundledCli(), ...clientFlags(upstream.url, files), '--port', String(port)],
    { stdio: 'ignore' })
  t.teardown(() => { child.kill('SIGKILL') })
  const exited = once(child, 'exit')
  await until(() => get(`http://127.0.0.1:${port}/-/readyz`).then((r) => r.status === 200, () => false), 15_000)
  t.equal((await get(`http://127.0.0.1:${port}/api/v1/namespaces/default/pods`)).status, 200, 'a request through the bundle')
  t.equal((await get(`http://127.0.0.1:${port}/-/metrics`)).status, 200, 'a scrape')
  child.kill('SIGTERM')
  await exited
  const modules = (await readFile(list, 'utf8')).split('\n')
  t.ok(modules.includes('NativeModule https'), 'the list holds what the process loaded')
  // Each required at load by a package, for what nothing here asks of it (config/bundle.mjs), or by our own code only for
  // what most starts do not need (an exec plugin): loading them cost Node.js 24 a few milliseconds each.
  for (const name of ['http2', 'fs/promises', 'zlib']) {
    t.same(modules.filter((m) => m === `NativeModule ${name}` || m.startsWith(`NativeModule internal/${name}/`)), [], `node:${name} never loaded`)
  }
})
