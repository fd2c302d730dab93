// A kubectl proxy command line (src/settings/flags.ts, kubectl-flags.ts): every flag of kubectl proxy, and
// the global ones its users type, is either taken with the meaning kubectl gives it or answered in one
// line with what to use instead; never "unknown option".
import t from 'tap'
import { loadConfig } from '../../../src/settings/load.js'
import type { Config } from '../../../src/settings/types.js'
import { tempDir } from '../../helpers/temp.js'

const dir = await tempDir(t, 'kubectl-flags')
const required = ['--upstream', 'https://10.0.0.1:5443', '--cacert', 'ca.crt', '--cert', 'client.crt', '--key', 'client.key']

function run (argv: string[]): Config {
  const command = loadConfig([...required, ...argv], {}, dir)
  if (command.action !== 'run') throw new Error(`expected run, got ${command.action}`)
  return command.config
}

function said (argv: string[]): string {
  try { run(argv) } catch (err) { return (err as Error).message }
  return ''
}

t.test('kubectl\'s spellings of our settings', async (t) => {
  const cases: Array<[string[], (c: Config) => unknown, unknown]> = [
    [['-p', '8002'], (c) => c.port, 8002],
    [['-p=8003'], (c) => c.port, 8003],
    [['-p8004'], (c) => c.port, 8004],
    [['--port=8005'], (c) => c.port, 8005],
    [['--port', '0', '-p', '8006'], (c) => c.port, 8006], // the last wins, whichever spelling
    [['-u', '/run/p.sock'], (c) => c.unixSocket, '/run/p.sock'],
    [['--keepalive=0s'], (c) => c.keepAliveMs, 0],
    [['--insecure-skip-tls-verify=true'], (c) => c.credentials.insecureSkipTlsVerify, true],
    [['--insecure-skip-tls-verify=false'], (c) => c.credentials.insecureSkipTlsVerify, false],
    [['--insecure-skip-tls-verify=1'], (c) => c.credentials.insecureSkipTlsVerify, true], // as Go's ParseBool
    [['--access-log=FALSE'], (c) => c.accessLog, false],
    [['--no-access-log'], (c) => c.accessLog, false],
    [['--access-log=t'], (c) => c.accessLog, true],
    [['-s', 'https://10.9.9.9:6443'], (c) => c.credentials.server?.href, 'https://10.9.9.9:6443/'],
    [['--server=https://10.9.9.9:6443'], (c) => c.credentials.server?.href, 'https://10.9.9.9:6443/'],
    [['--certificate-authority', 'k.crt'], (c) => c.credentials.ca, { kind: 'file', path: `${dir}/k.crt`, label: '--certificate-authority' }],
    [['--client-certificate', 'me.crt', '--client-key', 'me.key'], (c) => [c.credentials.cert, c.credentials.key],
      [{ path: `${dir}/me.crt`, label: '--client-certificate' }, { path: `${dir}/me.key`, label: '--client-key' }]],
    // kubectl proxy flags that ask for what mtls-proxy does anyway
    [['--api-prefix=/'], (c) => c.port, 8001],
    [['--api-prefix', ''], (c) => c.port, 8001],
    [['--disable-filter=false'], (c) => c.port, 8001],
    [['--no-disable-filter'], (c) => c.port, 8001],
    [['--append-server-path'], (c) => c.port, 8001],
    [['--reject-paths', '^/api/.*/pods/.*/exec,^/api/.*/pods/.*/attach', '--reject-methods', '^$'], (c) => c.rejectPaths.length, 2],
  ]
  for (const [argv, read, expected] of cases) t.match(read(run(argv)), expected, argv.join(' '))
})

t.test('a mistake is named as it was typed', async (t) => {
  t.equal(said(['-p', '70000']), "-p must be a whole number from 0 to 65535, got '70000'")
  t.equal(said(['--server', 'http://10.0.0.1:6443']), "--server must be an https:// URL (mutual TLS), got 'http://10.0.0.1:6443'")
  t.equal(said(['--access-log=maybe']), "--access-log must be true or false, got 'maybe'")
  t.equal(said(['--no-access-log=x']), "--no-access-log must be given without a value (--access-log or --no-access-log), got 'x'")
  t.equal(said(['-x']), '-x is no setting of mtls-proxy (see --help)')
})

t.test('kubectl\'s flags that are not ours: one line saying what to use', async (t) => {
  const answers: Array<[string[], string | RegExp]> = [
    [['--api-prefix', '/custom/'], /^--api-prefix: mtls-proxy serves the API at \/ only, with no prefix to strip/],
    [['--api-prefix=/api'], "--api-prefix: mtls-proxy serves the API at /; to serve only paths under /api/ as kubectl proxy does, give --accept-paths '^/api/'"],
    [['--www', './local/www/'], /^--www: mtls-proxy serves no static files: .*--allow-origin/],
    [['-w', 'www'], /^-w: mtls-proxy serves no static files/],
    [['-P', '/static/'], /^-P: mtls-proxy serves no static files/],
    [['--www-prefix=/static/'], /^--www-prefix: mtls-proxy serves no static files/],
    [['--disable-filter'], /^--disable-filter: .*--reject-paths and --reject-methods are empty.*add it to --accept-hosts .*never '\.\*', which lets a web page reach the proxy through DNS rebinding/],
    [['--disable-filter=true'], /^--disable-filter: /],
    [['--append-server-path=false'], /^--append-server-path: mtls-proxy always keeps the path of the server URL/],
    [['-v', '6'], '-v: mtls-proxy\'s log levels have names: --log-level debug (trace for the most; info is the default)'],
    [['--v=4'], /^--v: .*--log-level debug/],
    [['--vmodule', 'x=2'], /^--vmodule: .*--log-level debug/],
    [['-n', 'kube-system'], /^-n: the proxy serves every namespace/],
    [['--namespace=default'], /^--namespace: the proxy serves every namespace/],
    [['--request-timeout', '30s'], /^--request-timeout: .*--connect-timeout .*--response-timeout/],
    [['--as', 'jane'], /^--as: .*Impersonate-\* headers pass through/],
    [['--as-group', 'a', '--as-group', 'b'], /^--as-group: /],
    [['--as-uid', '1'], /^--as-uid: /],
    [['--username', 'admin'], /^--username: Kubernetes has no basic authentication/],
    [['--cache-dir', '/tmp'], /^--cache-dir: kubectl's discovery cache; it means nothing to a proxy: leave it out$/],
    [['--disable-compression'], /^--disable-compression: .*Accept-Encoding/],
    [['--warnings-as-errors'], /^--warnings-as-errors: /],
    [['--match-server-version=true'], /^--match-server-version: /],
    [['--log-flush-frequency', '5s'], /^--log-flush-frequency: /],
    [['--profile', 'cpu', '--profile-output', 'p'], /^--profile: /],
  ]
  for (const [argv, answer] of answers) {
    const message = said(argv)
    t.match(message, answer, argv.join(' '))
    t.notMatch(message, /\n/, `${argv.join(' ')}: one line`)
  }
})

t.test('--token: why not on the command line, the setting that is, and --token-file\'s own meaning; its value never repeated', async (t) => {
  for (const argv of [['--token', 's3cr3t-value'], ['--token=s3cr3t-value']]) {
    const message = said(argv)
    t.equal(message, '--token: a token on the command line is visible to every local user in ps; the API server\'s token is given with ' +
      '--upstream-token-file FILE or MTLS_PROXY_UPSTREAM_TOKEN_DATA (or did you mean --token-file? that is the token callers must send to the proxy)')
    t.notMatch(message, /s3cr3t/)
  }
  t.notMatch(said(['--password', 's3cr3t-value']), /s3cr3t/)
})

// Every flag of `kubectl proxy --help` and `kubectl options` (kubectl 1.32), as a kubectl proxy user writes it.
const KUBECTL_1_32 = [
  '--accept-hosts=^localhost$', '--accept-paths=^.*', '--address=127.0.0.1', '--api-prefix=/k8s-api', '--append-server-path=false',
  '--disable-filter=true', '--keepalive=0s', '--port=8001', '-p=8001', '--reject-methods=^$', '--reject-paths=^/api/.*/pods/.*/exec',
  '--unix-socket=/tmp/k.sock', '-u=/tmp/k.sock', '--www=/srv', '-w=/srv', '--www-prefix=/static/', '-P=/static/',
  '--as=jane', '--as-group=devs', '--as-uid=1', '--cache-dir=/tmp/c', '--certificate-authority=ca.crt', '--client-certificate=c.crt',
  '--client-key=c.key', '--cluster=prod', '--context=prod', '--disable-compression=true', '--insecure-skip-tls-verify=true',
  '--kubeconfig=k.yaml', '--log-flush-frequency=5s', '--match-server-version=true', '--namespace=default', '-n=default',
  '--password=p', '--profile=cpu', '--profile-output=p.pprof', '--request-timeout=0', '--server=https://10.0.0.1:6443',
  '-s=https://10.0.0.1:6443', '--tls-server-name=api', '--token=t', '--user=admin', '--username=u', '--v=2', '-v=2', '--vmodule=x=2',
  '--warnings-as-errors=true',
]

t.test('no kubectl flag is an unknown option', async (t) => {
  for (const flag of KUBECTL_1_32) {
    t.notMatch(said([flag]), /Unknown option|is no setting of mtls-proxy|Unexpected argument/, flag)
  }
})
