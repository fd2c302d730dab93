// npm run bench:tls-memory: what 1,000 idle TLS client connections cost a process, with nothing
// else in it (one shared TLS context, as the proxy's pool has), on this machine's Node.js and on the
// image's. Every open watch through the proxy holds one such connection upstream: this is the
// floor of a watch's cost over HTTP/1.1. Against the demo API server, on loopback.
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect, createSecureContext, type TLSSocket } from 'node:tls'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { startDemoApiServer } from '../src/demo/api-server.js'
import { benchFiles, benchNodes, sleep } from './lib.js'

const CONNECTIONS = 1000

async function child ([port, ca, cert, key]: string[]): Promise<void> {
  const secureContext = createSecureContext({ ca: readFileSync(ca!), cert: readFileSync(cert!), key: readFileSync(key!) })
  const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024
  await sleep(300)
  const before = rssMb()
  const sockets: TLSSocket[] = []
  for (let i = 0; i < CONNECTIONS; i++) {
    sockets.push(await new Promise<TLSSocket>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: Number(port), secureContext, servername: 'localhost', ALPNProtocols: ['http/1.1'] },
        () => resolve(socket))
      socket.on('error', reject)
    }))
  }
  await sleep(1000)
  process.stdout.write(`${(rssMb() - before).toFixed(1)}\n`)
  process.exit(0)
}

if (process.argv[2] === 'child') await child(process.argv.slice(3))
else {
  const work = await mkdtemp(join(tmpdir(), 'mtls-proxy-tls-memory-'))
  const { pki, files } = await benchFiles(work)
  const api = await startDemoApiServer(pki)
  const self = fileURLToPath(import.meta.url)
  process.stdout.write(`| Node.js | RSS added by ${CONNECTIONS.toLocaleString('en')} idle TLS client connections, MB |\n|---|---|\n`)
  for (const { label, bin } of await benchNodes()) {
    // (asynchronous: the API server answering the handshakes runs in this process)
    const { stdout } = await promisify(execFile)(bin, ['--import', 'tsx', self, 'child', new URL(api.url).port, files.cacert, files.cert, files.key],
      { encoding: 'utf8' })
    process.stdout.write(`| ${label} | +${stdout.trim()} |\n`)
  }
  await api.close()
  await rm(work, { recursive: true, force: true })
  process.exit(0)
}
