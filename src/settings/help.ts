// --help, derived from the table: its settings in sections, as kubectl groups its flags, each flag on
// its own line with its text indented under it, wrapped to the terminal's width.
import { formatDuration } from './durations.js'
import { GROUPS, OPTIONS, envName, type OptionSpec } from './options.js'

/** Under a flag, its text. */
const TEXT = ' '.repeat(6)

/** `width`: the terminal's columns (80 when stdout is no terminal). */
export function helpText (version: string, width = 80): string {
  const lines = (text: string, indent = TEXT, first = indent) => wrap(text, Math.max(width, 40), indent, first)
  const sections = (Object.keys(GROUPS) as Array<keyof typeof GROUPS>).map((group) => [
    '',
    `${GROUPS[group]}:`,
    ...(OPTIONS as readonly OptionSpec[]).filter((o) => o.group === group).flatMap((o) => {
      const head = `  ${flagOf(o)}`
      // A secret has no flag (every local user sees argv in ps): its variable heads it, and the other way follows.
      if (o.noFlag) return [head, ...lines(`${o.help}${defaultOf(o)}`), ...lines(`no flag: the environment, or '${o.name}:' in a config file`)]
      // The flag and its variable on one line when they fit, its text under it.
      const variable = `env ${envName(o.name)}`
      const fits = head.length + 3 + variable.length <= width
      return [...(fits ? [`${head}   ${variable}`] : [...lines(flagOf(o), TEXT, '  '), ...lines(variable)]), ...lines(`${o.help}${defaultOf(o)}`)]
    }),
  ])
  const usage = (command: string, what?: string) => [...lines(command, '    ', '  '), ...(what ? lines(what) : [])]
  return [
    ...lines(`mtls-proxy ${version}: plain HTTP on localhost, forwarded to an API server over mutual TLS`, '', ''),
    '',
    ...lines('Usage: mtls-proxy --upstream https://HOST:PORT --cacert ca.crt --cert client.crt --key client.key [options]', '         ', ''),
    ...usage('mtls-proxy [--kubeconfig FILE] [--context NAME] [options]',
      'the kubeconfig kubectl would read ($KUBECONFIG or ~/.kube/config by default); its user may hold a client certificate, a token, a tokenFile or an exec plugin'),
    ...usage('mtls-proxy --all-contexts [options]',
      'every context of the kubeconfig under /clusters/CONTEXT/, the current one also at /; a --config file may list more clusters under clusters: (name, upstream, cacert, cert, key…)'),
    ...usage('mtls-proxy [options] -- COMMAND [ARGS...]',
      'run COMMAND with a proxy for it alone, on a free loopback port, HTTPS with a token made for the run (MTLS_PROXY_URL, MTLS_PROXY_TOKEN, MTLS_PROXY_CACERT, KUBECONFIG); exits with its status'),
    ...usage('mtls-proxy kubeconfig [--kubeconfig FILE] [--context NAME] [--all-contexts] [--config FILE] [--address IP] [--port PORT] [-o json]',
      'print a kubeconfig for the proxy these settings start (YAML; no CA, no token)'),
    '',
    ...lines('Flags beat environment variables, which beat the --config file. A switch is --x, --x=true|false or --no-x; ' +
      'kubectl proxy\'s flags are taken, or answered with what to use instead.', '', ''),
    ...sections.flat(),
    '',
    'Help:',
    '  -h, --help',
    ...lines('show this help'),
    '  --version',
    ...lines('print the version, and the Node.js and platform it runs on'),
    '',
    'Then:',
    ...usage('curl http://127.0.0.1:8001/api/v1/namespaces/default/pods'),
    ...usage('kubectl --server http://127.0.0.1:8001 get pods'),
    '',
  ].join('\n')
}

/** `-p, --port PORT`, a secret by its variable (every local user sees argv in ps), and kubectl's names for it. */
function flagOf (o: OptionSpec): string {
  if (o.noFlag) return envName(o.name)
  const value = o.type === 'boolean' ? '' : ` ${o.value ?? 'VALUE'}`
  const also = o.aliases?.length ? ` (kubectl's ${o.aliases.map((a) => `--${a}`).join(', ')})` : ''
  return `${o.short ? `-${o.short}, ` : ''}--${o.name}${value}${also}`
}

function defaultOf (o: OptionSpec): string {
  if (o.default === undefined || o.default === '' || o.type === 'boolean') return ''
  return ` (default ${o.type === 'duration' ? formatDuration(o.default as number) : String(o.default)})`
}

/** Words into lines of at most `width` columns; a word longer than a line (a regular expression) stands alone. */
export function wrap (text: string, width: number, indent: string, first = indent): string[] {
  const out: string[] = []
  let line = first
  let empty = true
  for (const word of text.split(' ').filter(Boolean)) {
    if (!empty && line.length + 1 + word.length > width) {
      out.push(line)
      line = indent
      empty = true
    }
    line += empty ? word : ` ${word}`
    empty = false
  }
  out.push(line)
  return out
}
