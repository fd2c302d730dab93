// The floor: the least a Node.js forwarder can do per request on this machine, for comparison
// (`npm run bench:compare -- floor HEAD`). node:http in, undici dispatch out, each chunk written
// straight to the client: no guard, no header rules, no logs, no metrics, no Fastify. Not a proxy
// to use; the same command-line flags as the CLI so the compare script can start it alike.
import { createServer } from 'node:http'
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { Agent } from 'undici'

const { values } = parseArgs({ options: { upstream: { type: 'string' }, cacert: { type: 'string' }, cert: { type: 'string' }, key: { type: 'string' }, port: { type: 'string' } }, strict: false })
const origin = new URL(String(values.upstream)).origin
const agent = new Agent({
  connections: null,
  keepAliveTimeout: 30_000,
  connect: { ca: readFileSync(String(values.cacert)), cert: readFileSync(String(values.cert)), key: readFileSync(String(values.key)), servername: 'localhost' },
})

createServer((req, res) => {
  agent.dispatch({ origin, path: req.url ?? '/', method: req.method as 'GET', headers: { accept: req.headers.accept ?? '*/*' }, body: null }, {
    onConnect () {},
    onError (err) { res.statusCode = 502; res.end(String(err)) },
    onHeaders (status, raw) {
      const headers: string[] = []
      for (let i = 0; i < raw.length; i += 2) headers.push(raw[i]!.toString('latin1'), raw[i + 1]!.toString('latin1'))
      res.writeHead(status, headers)
      return true
    },
    onData (chunk) { return res.write(chunk) },
    onComplete () { res.end() },
  })
}).listen(Number(values.port), '127.0.0.1')
