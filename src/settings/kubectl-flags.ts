// kubectl's flags that are no setting here: those of `kubectl proxy` and the global ones its users
// type. Where one asks for what mtls-proxy does anyway (`--api-prefix=/`, `--disable-filter=false`)
// it is accepted; otherwise it is answered with what to use instead, in one line, so that a
// command line copied from kubectl proxy never meets a bare "unknown option". The flags that mean
// what ours mean are in the table itself (options.ts: `short`, `aliases`).

export interface KubectlFlag {
  name: string
  short?: string
  /** a switch (`--x`, `--x=false`, `--no-x`) or a flag that takes a value */
  type: 'string' | 'boolean'
  /** kubectl lets it be repeated (`--as-group`) */
  multiple?: true
  /** what to say for the value given; undefined: it asks for what mtls-proxy does anyway */
  answer: (value: string | boolean) => string | undefined
}

const STATIC_FILES = 'mtls-proxy serves no static files: serve them with any web server, and let its pages call the proxy with --allow-origin (e.g. --allow-origin http://localhost:3000)'
const IMPERSONATION = 'mtls-proxy impersonates no one itself; callers\' Impersonate-* headers pass through: kubectl --server http://127.0.0.1:8001 --as NAME …, or curl -H \'Impersonate-User: NAME\''
const LOG_LEVELS = 'mtls-proxy\'s log levels have names: --log-level debug (trace for the most; info is the default)'
const NO_USE = (what: string) => `${what}; it means nothing to a proxy: leave it out`
// A switch set to what mtls-proxy does anyway is accepted: only the other value needs an answer.
const unless = (accepted: boolean, text: string) => (value: string | boolean) => (value === accepted ? undefined : text)

/** What kubectl proxy does with --api-prefix: `/` serves the API as is; `/api…` serves only that part; any other prefix is stripped. */
function apiPrefix (value: string | boolean): string | undefined {
  const prefix = String(value).endsWith('/') ? String(value) : `${String(value)}/`
  if (prefix === '/') return undefined
  if (prefix.startsWith('/api')) {
    return `mtls-proxy serves the API at /; to serve only paths under ${prefix} as kubectl proxy does, give --accept-paths '^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}'`
  }
  return 'mtls-proxy serves the API at / only, with no prefix to strip: leave --api-prefix out and ask /api/… and /apis/… (kubectl --server http://127.0.0.1:8001)'
}

export const KUBECTL_FLAGS: readonly KubectlFlag[] = [
  // kubectl proxy's own (the rest are ours: --port/-p, --address, --unix-socket/-u, --keepalive, --accept-hosts,
  // --accept-paths, --reject-paths, --reject-methods)
  { name: 'api-prefix', type: 'string', answer: apiPrefix },
  { name: 'append-server-path', type: 'boolean', answer: unless(true, 'mtls-proxy always keeps the path of the server URL (--upstream, or the kubeconfig\'s) in front of each request; to drop it, give --upstream https://HOST:PORT without a path') },
  { name: 'disable-filter', type: 'boolean', answer: unless(false, 'mtls-proxy always filters, but its defaults already forward every path and method (--reject-paths and --reject-methods are empty: exec and attach work); to accept another Host name, add it to --accept-hosts (e.g. --accept-hosts \'^proxy\\.example\\.com$\'); never \'.*\', which lets a web page reach the proxy through DNS rebinding') },
  { name: 'www', short: 'w', type: 'string', answer: () => STATIC_FILES },
  { name: 'www-prefix', short: 'P', type: 'string', answer: () => STATIC_FILES },
  // kubectl's global flags (--kubeconfig, --context, --cluster, --user, --insecure-skip-tls-verify and
  // --tls-server-name are ours; --server/-s, --certificate-authority, --client-certificate, --client-key name ours)
  { name: 'token', type: 'string', answer: () => 'a token on the command line is visible to every local user in ps; the API server\'s token is given with --upstream-token-file FILE or MTLS_PROXY_UPSTREAM_TOKEN_DATA (or did you mean --token-file? that is the token callers must send to the proxy)' },
  { name: 'username', type: 'string', answer: () => 'Kubernetes has no basic authentication since 1.19: give a client certificate (--cert, --key) or a kubeconfig (--kubeconfig)' },
  { name: 'password', type: 'string', answer: () => 'Kubernetes has no basic authentication since 1.19: give a client certificate (--cert, --key) or a kubeconfig (--kubeconfig)' },
  { name: 'namespace', short: 'n', type: 'string', answer: () => 'the proxy serves every namespace: each request names its own in the path (/api/v1/namespaces/NAME/…), and kubectl -n NAME works through it as usual' },
  { name: 'request-timeout', type: 'string', answer: () => 'mtls-proxy\'s timeouts are --connect-timeout (connecting, TLS handshake included) and --response-timeout (until the response headers; watches and streamed bodies have no limit)' },
  { name: 'v', short: 'v', type: 'string', answer: () => LOG_LEVELS },
  { name: 'vmodule', type: 'string', answer: () => LOG_LEVELS },
  { name: 'as', type: 'string', answer: () => IMPERSONATION },
  { name: 'as-group', type: 'string', multiple: true, answer: () => IMPERSONATION },
  { name: 'as-uid', type: 'string', answer: () => IMPERSONATION },
  { name: 'disable-compression', type: 'boolean', answer: unless(false, 'the proxy passes each caller\'s Accept-Encoding on as sent: a client that wants no compression does not ask for it') },
  { name: 'warnings-as-errors', type: 'boolean', answer: unless(false, 'the proxy passes the API server\'s Warning headers on to its callers, whose own flag it is: leave it out') },
  { name: 'match-server-version', type: 'boolean', answer: unless(false, NO_USE('kubectl\'s check of its own version against the server\'s')) },
  { name: 'cache-dir', type: 'string', answer: () => NO_USE('kubectl\'s discovery cache') },
  { name: 'log-flush-frequency', type: 'string', answer: () => NO_USE('kubectl\'s log flushing (mtls-proxy flushes its log itself)') },
  { name: 'profile', type: 'string', answer: () => NO_USE('kubectl\'s Go profiler') },
  { name: 'profile-output', type: 'string', answer: () => NO_USE('kubectl\'s Go profiler') },
]

/** What to say about `given` (as typed: `-w`, `--www`) with the value it was given, or undefined to accept it. */
export function kubectlAnswer (flag: KubectlFlag, given: string, value: string | boolean): string | undefined {
  const answer = flag.answer(value)
  return answer === undefined ? undefined : `${given}: ${answer}`
}
