// npm run demo: a throwaway PKI, the demo API server over mTLS, and mtls-proxy in front of it,
// started exactly as a user would start it. Extra arguments go to mtls-proxy (e.g. -- --port 9000).
import { spawn } from 'node:child_process'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startDemoApiServer } from './api-server.js'
import { portArgument, portFree, untilServing } from './port.js'
import { createDemoPki, writeClientFiles } from './pki.js'
import { PodTicker } from './ticker.js'

const given = process.argv.slice(2)
const { port: asked, rest } = portArgument(given)
// The port first, before anything is made: 8001 is often a kubectl proxy's, and the commands below
// would reach the user's real cluster through it.
const port = await portFree(asked)
if (typeof port === 'string') {
  process.stderr.write(`demo: ${port}\n`)
  process.exit(2)
}

const pki = await createDemoPki()
const files = await writeClientFiles(pki)
const api = await startDemoApiServer(pki)
const manifest = join(files.dir, 'pod.yaml')
await writeFile(manifest, 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: hello\nspec:\n  containers:\n    - name: app\n      image: ' +
  'nginx:1.27\n')

const extension = import.meta.url.endsWith('.ts') ? '.ts' : '.js'
const cli = fileURLToPath(new URL(`../cli${extension}`, import.meta.url))
const args = ['--upstream', api.url, '--cacert', files.cacert, '--cert', files.cert, '--key', files.key, ...rest, '--port', String(port)]

// In a process group of its own: a terminal's Ctrl-C goes to the whole foreground group (and npm
// passes it on once more), and a second SIGINT makes the proxy give up its graceful stop. So the
// proxy hears of a stop from here alone, once.
const child = spawn(process.execPath, [...process.execArgv, cli, ...args], { stdio: 'inherit', detached: true })
let stopping = false
const stop = (signal: NodeJS.Signals) => {
  if (stopping) return
  stopping = true
  // SIGHUP (the terminal closed) would make the proxy reload: a stop is what is meant.
  child.kill(signal === 'SIGHUP' ? 'SIGTERM' : signal)
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, stop)
// However this process ends, the proxy it started does not outlive it.
process.on('exit', () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM') })

const ticker = new PodTicker(api)
const exited = new Promise<number>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 0 : 1))))
const serving = await untilServing(port, exited)
if (serving) {
  process.stderr.write([
    '',
    `demo API server (mutual TLS): ${api.url}, files in ${files.dir}`,
    `mtls-proxy ${args.join(' ')}`,
    '',
    'Try, in another terminal:',
    `  curl http://127.0.0.1:${port}/api/v1/namespaces/default/pods`,
    `  curl "http://127.0.0.1:${port}/api/v1/namespaces/default/pods?watch=1"`,
    `  kubectl --server http://127.0.0.1:${port} get pods --watch      (${ticker.describe()})`,
    `  kubectl --server http://127.0.0.1:${port} create -f ${manifest}`,
    `  kubectl --server http://127.0.0.1:${port} logs -f hello`,
    `  kubectl --server http://127.0.0.1:${port} exec hello -- hostname`,
    `  kubectl --server http://127.0.0.1:${port} delete pod hello`,
    `  instead of: curl --cacert ${files.cacert} --cert ${files.cert} --key ${files.key} ${api.url}/api/v1/namespaces/default/pods`,
    '',
    '',
  ].join('\n'))
  ticker.start()
}
const code = await exited
ticker.stop()
await api.close()
// The throwaway PKI holds a private key: it leaves with the demo.
await rm(files.dir, { recursive: true, force: true })
process.exit(code)
