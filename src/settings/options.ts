import { UsageError } from '../util/errors.js'

// The one table of settings. Flags, environment variables, the config file, --help and the
// README's table are all derived from it, so a setting cannot exist in one place and not another.

/** duration: Go-style (`30s`, `500ms`, `5m`) or plain seconds; held as seconds */
export type OptionType = 'string' | 'boolean' | 'number' | 'duration'

/** --help's sections, in order, as kubectl groups its flags. */
export const GROUPS = {
  upstream: 'API server and credentials',
  listening: 'Listening',
  callers: 'Who may call',
  filtering: 'Filtering',
  timeouts: 'Timeouts',
  operations: 'Operations and health',
  logging: 'Logging',
} as const

export interface OptionSpec {
  /** flag name without dashes; also the key in a config file */
  name: string
  /** its section of --help */
  group: keyof typeof GROUPS
  type: OptionType
  help: string
  default?: string | number | boolean
  /** a file path: relative paths in a config file resolve against the file's folder */
  path?: boolean
  /** shown in --help as the value's placeholder */
  value?: string
  /** secrets: from the environment or a config file only, never argv (visible to every local user in ps) */
  noFlag?: boolean
  /** a value to show when the setting is missing */
  example?: string
  /** a one-letter flag, as kubectl proxy spells it (`-p` for --port) */
  short?: string
  /** kubectl's names for the same setting (`--server` for --upstream), so its users' command lines work */
  aliases?: readonly string[]
}

// One row per setting, however long its help: the table reads as a table.
export const OPTIONS = [
  { name: 'upstream', group: 'upstream', type: 'string', value: 'URL', short: 's', aliases: ['server'], example: 'https://192.168.0.18:5443', help: 'API server to forward to, e.g. https://192.168.0.18:5443 (required unless --kubeconfig names it)' },
  { name: 'cacert', group: 'upstream', type: 'string', value: 'FILE', path: true, aliases: ['certificate-authority'], example: 'ca.crt', help: 'CA certificate(s) that sign the API server certificate, PEM' },
  { name: 'cert', group: 'upstream', type: 'string', value: 'FILE', path: true, aliases: ['client-certificate'], example: 'client.crt', help: 'client certificate, PEM (or --kubeconfig, or MTLS_PROXY_CERT_DATA, or a token: --upstream-token-file)' },
  { name: 'key', group: 'upstream', type: 'string', value: 'FILE', path: true, aliases: ['client-key'], example: 'client.key', help: 'client private key, PEM: PKCS#1, PKCS#8 or SEC1; RSA, ECDSA or Ed25519' },
  { name: 'kubeconfig', group: 'upstream', type: 'string', value: 'FILE', path: true, help: 'take server, CA and credentials (client certificate, token, tokenFile, exec plugin) from this kubeconfig; flags above override it. Default, when neither --upstream nor --cert is given: $KUBECONFIG (merged as kubectl does) or ~/.kube/config' },
  { name: 'context', group: 'upstream', type: 'string', value: 'NAME', help: 'kubeconfig context to use (default: its current-context)' },
  { name: 'cluster', group: 'upstream', type: 'string', value: 'NAME', help: 'kubeconfig cluster to use instead of the context\'s' },
  { name: 'user', group: 'upstream', type: 'string', value: 'NAME', help: 'kubeconfig user to use instead of the context\'s' },
  { name: 'all-contexts', group: 'upstream', type: 'boolean', default: false, help: 'serve every context of the kubeconfig, each under /clusters/CONTEXT/ (the name URI-encoded); the default context is also served at /' },
  { name: 'cacert-data', group: 'upstream', type: 'string', noFlag: true, help: 'CA certificate(s) as PEM text or base64 of it, instead of --cacert' },
  { name: 'cert-data', group: 'upstream', type: 'string', noFlag: true, help: 'client certificate as PEM text or base64 of it, instead of --cert' },
  { name: 'key-data', group: 'upstream', type: 'string', noFlag: true, help: 'client private key as PEM text or base64 of it, instead of --key' },
  { name: 'upstream-token-file', group: 'upstream', type: 'string', value: 'FILE', path: true, help: 'bearer token for the API server, read again whenever the file changes (kubectl\'s --token, or a kubeconfig user\'s tokenFile); not --token-file, which is what callers send to the proxy' },
  { name: 'upstream-token-data', group: 'upstream', type: 'string', noFlag: true, help: 'bearer token for the API server as text, instead of --upstream-token-file' },
  { name: 'key-passphrase-file', group: 'upstream', type: 'string', value: 'FILE', path: true, help: 'file holding the passphrase of an encrypted private key' },
  { name: 'insecure-skip-tls-verify', group: 'upstream', type: 'boolean', default: false, help: 'do not verify the API server certificate (dangerous: anyone in the middle gets your requests)' },
  { name: 'tls-server-name', group: 'upstream', type: 'string', value: 'NAME', help: 'name to verify in the API server certificate, when it differs from the --upstream host' },
  { name: 'address', group: 'listening', type: 'string', value: 'IP', default: '127.0.0.1', help: 'address to listen on' },
  { name: 'port', group: 'listening', type: 'number', value: 'PORT', short: 'p', default: 8001, help: 'port to listen on (0 picks a free one)' },
  { name: 'status-address', group: 'operations', type: 'string', value: 'HOST:PORT', help: 'also serve /-/healthz, /-/readyz, /-/status and /-/metrics (and nothing else) here, e.g. 0.0.0.0:9090 for kubelet probes and Prometheus' },
  { name: 'unix-socket', group: 'listening', type: 'string', value: 'PATH', path: true, short: 'u', help: 'listen on this Unix socket (mode 0600, in a folder no one else can write to) instead of TCP: no other local user can connect' },
  { name: 'listen-cert', group: 'listening', type: 'string', value: 'FILE', path: true, help: 'serve HTTPS with this certificate (PEM) instead of plain HTTP: clients such as kubectl send a --token only over HTTPS; reloaded when it changes' },
  { name: 'listen-key', group: 'listening', type: 'string', value: 'FILE', path: true, help: 'the private key of --listen-cert (PEM)' },
  { name: 'token-file', group: 'callers', type: 'string', value: 'FILE', path: true, help: 'the token CALLERS must send to the proxy (Authorization: Bearer <the token in FILE>), needed to listen beyond loopback; never sent to the API server (its token is --upstream-token-file)' },
  { name: 'allow-non-loopback', group: 'callers', type: 'boolean', default: false, help: 'allow an --address other than loopback: anyone who can reach it acts with the client certificate' },
  { name: 'accept-hosts', group: 'callers', type: 'string', value: 'REGEXPS', default: '^localhost$,^127\\.0\\.0\\.1$,^\\[::1\\]$', help: 'comma-separated regular expressions for Host names (port removed) that are served, as kubectl proxy; the listen address is added (for 0.0.0.0 or ::, this machine\'s IP addresses at start)' },
  { name: 'accept-paths', group: 'filtering', type: 'string', value: 'REGEXPS', default: '^.*', help: 'comma-separated regular expressions for paths that are forwarded (matched case-insensitively on the decoded, normalised path)' },
  { name: 'reject-paths', group: 'filtering', type: 'string', value: 'REGEXPS', default: '', help: 'comma-separated regular expressions for paths that are refused, e.g. ^/api/.*/pods/.*/exec,^/api/.*/pods/.*/attach' },
  { name: 'reject-methods', group: 'filtering', type: 'string', value: 'REGEXPS', default: '', help: 'comma-separated regular expressions for methods that are refused, e.g. POST,PUT,PATCH,DELETE for read-only use' },
  { name: 'allow-origin', group: 'callers', type: 'string', value: 'ORIGINS', help: 'comma-separated web origins (e.g. http://localhost:3000) whose pages may call the proxy; by default no web page may' },
  { name: 'allow-unauthenticated', group: 'callers', type: 'boolean', default: false, help: 'with --allow-non-loopback and no --token-file: accept that anyone on the network acts as you' },
  { name: 'workers', group: 'listening', type: 'string', value: 'N|auto', default: '1', help: 'processes serving the port, sharing it: auto is one per core the process may use (CPU affinity and cgroup quota); 1 keeps a sidecar small (not with --unix-socket)' },
  { name: 'max-connections', group: 'listening', type: 'number', value: 'N', default: 4096, help: 'cap on client connections at once (each open watch holds one); with --workers, per worker' },
  { name: 'config', group: 'operations', type: 'string', value: 'FILE', help: 'YAML or JSON file with any of these settings (keys are the flag names)' },
  { name: 'log-level', group: 'logging', type: 'string', value: 'LEVEL', default: 'info', help: 'fatal, error, warn, info, debug, trace or silent' },
  { name: 'access-log', group: 'logging', type: 'boolean', default: true, help: 'log one line per request (--no-access-log turns it off)' },
  { name: 'connect-timeout', group: 'timeouts', type: 'duration', value: 'DURATION', default: 10, help: 'time to connect to the API server, TLS handshake included, before answering 504' },
  { name: 'response-timeout', group: 'timeouts', type: 'duration', value: 'DURATION', default: 120, help: 'time to wait for the response headers before answering 504 (streaming bodies have no limit)' },
  { name: 'client-header-timeout', group: 'timeouts', type: 'duration', value: 'DURATION', default: 10, help: 'a new connection must send a whole request head (with --listen-cert, its TLS handshake too) within this long or be closed, as nginx\'s client_header_timeout' },
  { name: 'client-body-timeout', group: 'timeouts', type: 'duration', value: 'DURATION', default: 60, help: 'a request body that sends nothing for this long is cut with 408, as nginx\'s client_body_timeout (0: never)' },
  { name: 'keepalive', group: 'timeouts', type: 'duration', value: 'DURATION', default: 30, help: 'TCP keep-alive period on both sides of exec/attach/port-forward tunnels, so idle sessions survive load balancers (0: off)' },
  { name: 'shutdown-timeout', group: 'timeouts', type: 'duration', value: 'DURATION', default: 20, help: 'on SIGTERM/SIGINT, how long requests in flight may take to finish' },
  { name: 'expiry-warning-days', group: 'operations', type: 'number', value: 'DAYS', default: 30, help: 'warn when a certificate has fewer days left' },
  { name: 'expiry-critical-days', group: 'operations', type: 'number', value: 'DAYS', default: 7, help: 'log at error level when a certificate has fewer days left' },
  { name: 'expiry-check-interval', group: 'operations', type: 'duration', value: 'DURATION', default: 3600, help: 'how often certificate expiry is checked again' },
  { name: 'probe-path', group: 'operations', type: 'string', value: 'PATH', default: '/version', help: 'path requested from the API server to decide readiness' },
  { name: 'probe-interval', group: 'operations', type: 'duration', value: 'DURATION', default: 5, help: 'how often readiness is checked (every second while not ready)' },
] as const satisfies readonly OptionSpec[]

export type OptionName = (typeof OPTIONS)[number]['name']

/** The table by name. */
export const SPECS: ReadonlyMap<string, OptionSpec> = new Map(OPTIONS.map((o) => [o.name, o]))

/** MTLS_PROXY_TLS_SERVER_NAME for tls-server-name */
export function envName (name: string): string {
  return `MTLS_PROXY_${name.toUpperCase().replaceAll('-', '_')}`
}

/** The variables that carry secrets (the `-data` settings), which no process the proxy starts is given. */
export const SECRET_VARIABLES: readonly string[] = (OPTIONS as readonly OptionSpec[]).filter((o) => o.noFlag).map((o) => envName(o.name))

/** A required setting that was given nowhere, with every way to give it. */
export function missingSetting (name: OptionName): UsageError {
  const example = (OPTIONS as readonly OptionSpec[]).find((o) => o.name === name)?.example ?? 'VALUE'
  return new UsageError(`missing --${name} (or ${envName(name)}, or '${name}:' in a config file), e.g. --${name} ${example}`)
}
