// The official JavaScript client, @kubernetes/client-node 1.x, through the proxy. It needs Node.js
// 22 or newer, so it runs where the suite runs on the Dockerfile's Node (CI's second run), and is
// installed here, into a folder of its own, not into the project's dependencies: node_modules/.cache,
// which outlives the run (the install is the slow part) and goes with node_modules, not into /tmp.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { ROOT } from '../helpers/root.js'
import { pkiWithFiles } from '../helpers/pki.js'
import { startProxy } from '../helpers/proxy.js'
import { startDemoUpstream } from '../helpers/upstream.js'

const run = promisify(execFile)
const PACKAGE_DIR = join(ROOT, 'node_modules/.cache/mtls-proxy-test-client-node')

async function clientNode (): Promise<string | undefined> {
  const major = Number(process.versions.node.split('.')[0])
  if (major < 22) return `@kubernetes/client-node 1.x needs Node.js 22 or newer, this is ${process.version} (CI runs it on the Dockerfile's Node)`
  if (existsSync(join(PACKAGE_DIR, 'node_modules/@kubernetes/client-node/package.json'))) return undefined
  try {
    await run('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--prefix', PACKAGE_DIR, '@kubernetes/client-node@1'], { timeout: 180_000 })
    return undefined
  } catch (err) {
    return `@kubernetes/client-node could not be installed: ${(err as Error).message.split('\n')[0]}`
  }
}

const missing = await clientNode()

t.test('@kubernetes/client-node lists, gets a 404 Status, watches and execs through the proxy', { skip: missing ?? false }, async (t) => {
  const { pki, files } = await pkiWithFiles(t)
  const api = await startDemoUpstream(t, pki)
  const proxy = await startProxy(t, api.url, files)
  const { stdout } = await run(process.execPath, [join(ROOT, 'test/fixtures/client-node.mjs'), proxy.url, PACKAGE_DIR, 'web-7d4b9c6f5-abcde'], { timeout: 60_000 })
  const result = JSON.parse(stdout) as { pods: string[]; notFound: { status: number; reason: string }; watched: string[]; exec: string }
  t.same(result.pods, ['web-7d4b9c6f5-abcde', 'db-0'])
  t.same(result.notFound, { status: 404, reason: 'NotFound' }, 'the upstream Status reaches the client')
  t.ok(result.watched.length >= 2 && result.watched.every((type) => type === 'ADDED'), 'a watch streams events')
  t.equal(result.exec, 'hello from node\n', 'exec over WebSocket')
})
