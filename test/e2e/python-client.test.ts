// A real client other than kubectl: Debian's python3-kubernetes (22.6). Its WebSocket library sends
// `Origin: http://127.0.0.1:PORT` (the URL it dials) on exec, which the browser guard once refused.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { ROOT } from '../helpers/root.js'
import { pkiWithFiles } from '../helpers/pki.js'
import { startProxy } from '../helpers/proxy.js'
import { startDemoUpstream } from '../helpers/upstream.js'
import { until } from '../helpers/until.js'

const run = promisify(execFile)
// Debian's package installs for Debian's interpreter, not for another python3 that may come first on PATH.
const PYTHON = '/usr/bin/python3'

async function pythonClient (): Promise<string | undefined> {
  if (!existsSync(PYTHON)) return `${PYTHON} not found`
  try {
    await run(PYTHON, ['-c', 'import kubernetes, websocket'])
    return undefined
  } catch {
    return 'python3-kubernetes is not installed (apt-get install python3-kubernetes; .ci/run installs it)'
  }
}

const missing = await pythonClient()

t.test('the Python client lists, gets a 404 Status, watches and execs through the proxy', { skip: missing ?? false }, async (t) => {
  const { pki, files } = await pkiWithFiles(t)
  const api = await startDemoUpstream(t, pki)
  const proxy = await startProxy(t, api.url, files)
  const { stdout } = await run(PYTHON, [join(ROOT, 'test/fixtures/python-client.py'), proxy.url, 'web-7d4b9c6f5-abcde'], { timeout: 60_000 })
  const result = JSON.parse(stdout) as { pods: string[]; notFound: { status: number; reason: string }; watched: string[]; exec: string }
  t.same(result.pods, ['web-7d4b9c6f5-abcde', 'db-0'])
  t.same(result.notFound, { status: 404, reason: 'NotFound' }, 'the upstream Status reaches the client')
  t.ok(result.watched.length >= 2 && result.watched.every((type) => type === 'ADDED'), 'a watch streams events')
  t.equal(result.exec, 'hello from python\n', 'exec over WebSocket, its Origin naming the proxy itself')
  // A tunnel's access line is written when its socket closes, a moment after the client is done.
  await until(() => proxy.logs.some((l) => l.msg === 'request' && l.upgrade === 'websocket'))
  t.match(proxy.logs.find((l) => l.msg === 'request' && l.upgrade === 'websocket'), { status: 101 })
})
