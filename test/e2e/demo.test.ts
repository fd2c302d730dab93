// npm run demo, as a newcomer runs it: it serves, and Ctrl-C leaves nothing behind (its throwaway
// PKI holds a private key).
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import t from 'tap'
import { ROOT } from '../helpers/root.js'
import { get } from '../helpers/http.js'
import { until } from '../helpers/until.js'

t.test('the demo serves through the proxy, and Ctrl-C removes its temporary folder with the key', async (t) => {
  const demo = spawn(process.execPath, ['--import', 'tsx', 'src/demo/main.ts', '--port', '0'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (demo.exitCode === null) demo.kill('SIGKILL') })
  let out = ''
  let err = ''
  demo.stdout.on('data', (d: Buffer) => { out += d })
  demo.stderr.on('data', (d: Buffer) => { err += d })
  await until(() => /"listen":"http:\/\/127\.0\.0\.1:\d+"/.test(out), 15_000)
  const url = /"listen":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out)![1]!
  const dir = /files in (\S+)/.exec(err)![1]!
  t.ok(existsSync(`${dir}/client.key`), 'the demo key is on disk while it runs')
  t.equal((await get(`${url}/api/v1/namespaces/default/pods`)).status, 200)
  const exited = new Promise((resolve) => demo.on('exit', resolve))
  demo.kill('SIGINT')
  await exited
  t.notOk(existsSync(dir), `${dir} is gone after Ctrl-C`)
})
