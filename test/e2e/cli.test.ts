// The command line as a user meets it: help, one-line start-up errors with exit code 2,
// and a graceful stop on SIGTERM that loses no request.
import { writeFile, chmod } from 'node:fs/promises'
import { join } from 'node:path'
import { request as httpRequest } from 'node:http'
import t from 'tap'
import { clientFlags } from '../helpers/proxy.js'
import { busyPort } from '../helpers/net.js'
import { pkiWithFiles } from '../helpers/pki.js'
import { echoHandler, startUpstream } from '../helpers/upstream.js'
import { runCli, startCli } from '../helpers/cli.js'
import { get, rawRequest } from '../helpers/http.js'

const { pki, files } = await pkiWithFiles(t)
const base = (upstream = 'https://127.0.0.1:1') => clientFlags(upstream, files)

t.test('--help and --version', async (t) => {
  const help = await runCli(['--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /Usage: mtls-proxy --upstream https:\/\/HOST:PORT --cacert ca\.crt --cert client\.crt\s+--key client\.key/)
  t.match(help.stdout, /--tls-server-name NAME/)
  t.match(help.stdout, /env MTLS_PROXY_UPSTREAM/)
  t.notMatch(help.stdout, /\(default \)/, 'no empty defaults')
  // Not a terminal: 80 columns; a line is longer only when it is one word (a regular expression) that cannot be broken.
  for (const line of help.stdout.split('\n')) if (line.length > 80) t.match(line, /^ *\S+$/, `within 80 columns: ${line.slice(0, 50)}`)
  t.match(help.stdout, /\nAPI server and credentials:\n[^]*\nListening:\n[^]*\nWho may call:\n[^]*\nFiltering:\n[^]*\nTimeouts:\n[^]*\nOperations and health:\n[^]*\nLogging:\n/, 'in sections, as kubectl groups its flags')
  t.match(help.stdout, /^ {2}-p, --port PORT +env MTLS_PROXY_PORT\n {6}port to listen on/m, 'each flag with its variable, its text indented under it')
  t.match(help.stdout, /^ {2}MTLS_PROXY_KEY_DATA\n +client private key/m, 'a secret without a flag is shown by its variable')
  const version = await runCli(['--version'])
  t.equal(version.code, 0)
  t.match(version.stdout, /^\d+\.\d+\.\d+ \(Node\.js v\d+\.\d+\.\d+, [a-z0-9]+\/[a-z0-9]+\)\n$/, 'the version first, then the Node.js and platform')
})

t.test('each start-up mistake: one line on stderr naming the problem, exit code 2', async (t) => {
  const dir = files.dir
  const garbage = join(dir, 'garbage.crt')
  await writeFile(garbage, 'this is not a certificate\n')
  const otherClient = await pki.ca.issue({ commonName: 'someone-else', usage: 'client' })
  const otherKey = join(dir, 'other.key')
  await writeFile(otherKey, otherClient.keyPem)
  const expired = await pki.ca.issue({ commonName: 'old', usage: 'client', notBefore: new Date(Date.now() - 10 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) })
  const future = await pki.ca.issue({ commonName: 'future', usage: 'client', notBefore: new Date(Date.now() + 86_400_000), notAfter: new Date(Date.now() + 10 * 86_400_000) })
  for (const [name, pair] of [['expired', expired], ['future', future]] as const) {
    await writeFile(join(dir, `${name}.crt`), pair.certPem)
    await writeFile(join(dir, `${name}.key`), pair.keyPem)
  }
  const badConfig = join(dir, 'bad.yaml')
  await writeFile(badConfig, 'upstream: https://127.0.0.1:1\nlisten: 8001\n')
  const unreadable = join(dir, 'unreadable.crt')
  await writeFile(unreadable, pki.ca.certPem)
  await chmod(unreadable, 0o000)
  const busy = await busyPort(t)

  const cases: Array<[string, string[], RegExp, NodeJS.ProcessEnv?]> = [
    ['no upstream', ['--cacert', files.cacert, '--cert', files.cert, '--key', files.key], /missing --upstream \(or MTLS_PROXY_UPSTREAM, or 'upstream:' in a config file\)/],
    ['unknown flag', [...base(), '--bogus'], /--bogus is no setting of mtls-proxy/],
    // kubectl proxy's flags that are no setting here are answered with what to use instead
    ['kubectl proxy --www', [...base(), '--www', 'static'], /^mtls-proxy: --www: mtls-proxy serves no static files: .*--allow-origin/],
    ['kubectl --token', [...base(), '--token', 'abc'], /^mtls-proxy: --token: a token on the command line is visible to every local user in ps; .*--token-file/],
    ['port not a number', [...base(), '--port', 'abc'], /--port must be a number, got 'abc'/],
    ['port out of range', [...base(), '--port', '70000'], /--port must be a whole number from 0 to 65535/],
    ['plain http upstream', base('http://127.0.0.1:6443'), /--upstream must be an https:\/\/ URL/],
    ['non-loopback address', [...base(), '--address', '0.0.0.0'], /--address 0\.0\.0\.0 is not a loopback address.*--allow-non-loopback/],
    ['missing CA file', ['--upstream', 'https://127.0.0.1:1', '--cacert', join(dir, 'nope.crt'), '--cert', files.cert, '--key', files.key], /--cacert .*nope\.crt: cannot read: no such file/],
    ['CA file is no PEM', ['--upstream', 'https://127.0.0.1:1', '--cacert', garbage, '--cert', files.cert, '--key', files.key], /--cacert .*garbage\.crt: no PEM certificate found/],
    ['cert and key swapped', ['--upstream', 'https://127.0.0.1:1', '--cacert', files.cacert, '--cert', files.key, '--key', files.cert], /no PEM certificate found.*are --cert and --key swapped\?/],
    ['key of another certificate', ['--upstream', 'https://127.0.0.1:1', '--cacert', files.cacert, '--cert', files.cert, '--key', otherKey], /--key .*other\.key does not match the certificate in --cert/],
    ['expired client certificate', ['--upstream', 'https://127.0.0.1:1', '--cacert', files.cacert, '--cert', join(dir, 'expired.crt'), '--key', join(dir, 'expired.key')], /--cert .*expired\.crt: the client certificate expired on \d{4}-/],
    ['client certificate not yet valid', ['--upstream', 'https://127.0.0.1:1', '--cacert', files.cacert, '--cert', join(dir, 'future.crt'), '--key', join(dir, 'future.key')], /--cert .*future\.crt: the client certificate is not valid until/],
    ['unknown key in config file', ['--config', badConfig, '--cacert', files.cacert, '--cert', files.cert, '--key', files.key], /'listen' \(config file .*bad\.yaml\) is no setting of mtls-proxy/],
    ['bad environment variable', base(), /MTLS_PROXY_PORT must be a number, got 'eighty'/, { MTLS_PROXY_PORT: 'eighty' }],
    ['port in use', [...base(), '--port', String(busy)], new RegExp(`cannot listen on 127\\.0\\.0\\.1:${busy}: address already in use`)],
    // Read when the credentials are, after the settings: still with the hint about a misspelt variable.
    ['missing kubeconfig, and a misspelt variable', ['--kubeconfig', join(dir, 'nope.yaml')],
      /cannot read kubeconfig .*nope\.yaml: no such file \(also: MTLS_PROXY_CONTEXTT is no setting .*did you mean MTLS_PROXY_CONTEXT\? \(ignored\)\)$/,
      { MTLS_PROXY_CONTEXTT: 'prod' }],
  ]
  if (process.getuid?.() !== 0) {
    cases.push(['unreadable CA file', ['--upstream', 'https://127.0.0.1:1', '--cacert', unreadable, '--cert', files.cert, '--key', files.key], /cannot read: permission denied/])
  }
  // A few at a time: each is a Node.js start, and twenty at once on two busy cores ran into runCli's time limit.
  const check = async ([name, args, message, env]: (typeof cases)[number]) => {
    const result = await runCli(args, env)
    t.equal(result.code, 2, `${name}: exit code 2`)
    const lines = result.stderr.trimEnd().split('\n')
    t.equal(lines.length, 1, `${name}: one line (${result.stderr.trim()})`)
    t.match(lines[0], /^mtls-proxy: /, `${name}: prefixed`)
    t.match(lines[0], message, name)
    t.notMatch(result.stderr, /\n\s+at /, `${name}: no stack trace`)
  }
  for (let i = 0; i < cases.length; i += 4) await Promise.all(cases.slice(i, i + 4).map(check))
})

t.test('it starts, says where it serves and forwards, and proxies', async (t) => {
  const upstream = await startUpstream(t, pki, echoHandler)
  const proxy = await startCli(t, base(upstream.url))
  const serving = proxy.logs().find((l) => typeof l.listen === 'string')!
  t.match(serving.msg, new RegExp(`serving http://127\\.0\\.0\\.1:${proxy.port}, forwarding to ${upstream.url.replace(/\./g, '\\.')} as CN=demo-admin`))
  const res = await get(`${proxy.url}/api/v1/pods?x=1`)
  t.equal(res.status, 200)
  t.equal(res.json().url, '/api/v1/pods?x=1')
  proxy.child.kill('SIGTERM')
  const exit = await proxy.exited
  t.equal(exit.code, 0)
  // Log lines are written behind the requests; none may be lost when the process exits.
  const lines = exit.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
  t.match(lines.find((l) => l.msg === 'request'), { method: 'GET', url: '/api/v1/pods?x=1', status: 200 }, 'the access line reached stdout')
  t.equal(lines.at(-1)?.msg, 'stopped', 'the last line, written just before exit, was flushed')
})

t.test('a kubectl proxy command line starts it: kubectl\'s names, short flags and --flag=true|false', async (t) => {
  const upstream = await startUpstream(t, pki, echoHandler)
  const proxy = await startCli(t, ['-p=0', '-s', upstream.url, '--certificate-authority', files.cacert, '--client-certificate', files.cert,
    '--client-key', files.key, '--insecure-skip-tls-verify=false', '--disable-filter=false', '--api-prefix=/', '--access-log=false'], {}, { anyPort: false })
  const res = await get(`${proxy.url}/api/v1/pods`)
  t.equal(res.status, 200)
  t.equal(res.json().url, '/api/v1/pods')
  t.notOk(proxy.logs().some((l) => l.msg === 'request'), '--access-log=false')
})

t.test('SIGTERM with a request in flight: the request completes, new connections are refused, exit 0', async (t) => {
  let arrived!: () => void
  const requestArrived = new Promise<void>((resolve) => { arrived = resolve })
  const upstream = await startUpstream(t, pki, (req, res) => {
    if (req.url !== '/slow') { echoHandler(req, res); return }
    arrived()
    setTimeout(() => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('finished') }, 700)
  })
  const proxy = await startCli(t, base(upstream.url))
  const inFlight = get(`${proxy.url}/slow`)
  await requestArrived
  proxy.child.kill('SIGTERM')
  const res = await inFlight
  t.equal(res.status, 200)
  t.equal(res.body, 'finished', 'the request in flight completed')
  t.equal(res.headers.connection, 'close', 'and told the client not to reuse the connection')
  await t.rejects(rawRequest(proxy.port, 'GET /version HTTP/1.1\r\nHost: localhost\r\n\r\n'), { code: 'ECONNREFUSED' }, 'no new connections after the stop began')
  const exit = await proxy.exited
  t.equal(exit.code, 0)
  t.match(exit.stdout, /SIGTERM: shutting down/)
})

t.test('SIGTERM ends open watches cleanly and exits well within the grace period', async (t) => {
  const upstream = await startUpstream(t, pki, (req, res) => {
    if (!req.url?.includes('watch=1')) { echoHandler(req, res); return }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.write('{"type":"ADDED"}\n')
  })
  const GRACE_MS = 30_000
  const proxy = await startCli(t, [...base(upstream.url), '--shutdown-timeout', String(GRACE_MS / 1000)])
  const ended = new Promise<{ body: string; complete: boolean }>((resolve, reject) => {
    httpRequest(`${proxy.url}/api/v1/pods?watch=1`, (res) => {
      let body = ''
      res.on('data', (d) => {
        body += d
        if (body.includes('ADDED')) proxy.child.kill('SIGTERM')
      })
      res.on('end', () => resolve({ body, complete: res.complete }))
      res.on('error', reject)
    }).on('error', reject).end()
  })
  const started = Date.now()
  const watch = await ended
  t.equal(watch.body, '{"type":"ADDED"}\n')
  t.ok(watch.complete, 'the watch response ended properly (a clean end of the chunked body)')
  t.equal((await proxy.exited).code, 0)
  t.ok(Date.now() - started < GRACE_MS / 2, `did not wait for the 30 s grace period: exited ${Date.now() - started} ms after SIGTERM`)
})
