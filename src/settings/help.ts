// --help, derived from the table.
import { formatDuration } from './durations.js'
import { OPTIONS, envName, type OptionSpec } from './options.js'

export function helpText (version: string): string {
  const column = 28
  const indent = ' '.repeat(column + 3)
  const rows = (OPTIONS as readonly OptionSpec[]).map((o) => {
    // Secrets have no flag (every local user sees argv in ps): their first column is the variable.
    const flag = o.noFlag ? envName(o.name) : o.type === 'boolean' ? `--${o.name}` : `--${o.name} ${o.value ?? 'VALUE'}`
    const shown = o.type === 'duration' ? formatDuration(o.default as number) : String(o.default)
    const dflt = o.default !== undefined && o.default !== '' && o.type !== 'boolean' ? ` (default ${shown})` : ''
    const where = o.noFlag ? `no flag: the environment, or '${o.name}:' in a config file` : `env ${envName(o.name)}`
    const head = flag.length < column ? `  ${flag.padEnd(column)} ` : `  ${flag}\n${indent}`
    return `${head}${o.help}${dflt}\n${indent}${where}`
  })
  return [
    `mtls-proxy ${version}: plain HTTP on localhost, forwarded to an API server over mutual TLS`,
    '',
    'Usage: mtls-proxy --upstream https://HOST:PORT --cacert ca.crt --cert client.crt --key client.key [options]',
    '       mtls-proxy [--kubeconfig FILE] [--context NAME] [options]   (default: $KUBECONFIG or ~/.kube/config, as kubectl;',
    '                  its user may hold a client certificate, a token, a tokenFile or an exec plugin)',
    '       mtls-proxy --all-contexts [options]   every context of the kubeconfig under /clusters/CONTEXT/, the current one',
    '                  also at /; a --config file may list more clusters under clusters: (name, upstream, cacert, cert, key…)',
    '       mtls-proxy [options] -- COMMAND [ARGS...]   run COMMAND with a proxy for it alone, on a free loopback port, HTTPS',
    '                  with a token made for the run (MTLS_PROXY_URL, MTLS_PROXY_TOKEN, MTLS_PROXY_CACERT, KUBECONFIG);',
    '                  exits with its status',
    '       mtls-proxy kubeconfig [--address IP] [--port PORT]   print a kubeconfig for a proxy there',
    '',
    'Options (flags beat environment variables, which beat the --config file):',
    ...rows,
    `  ${'-h, --help'.padEnd(column)} show this help`,
    `  ${'--version'.padEnd(column)} print the version, and the Node.js and platform it runs on`,
    '',
    'Then: curl http://127.0.0.1:8001/api/v1/namespaces/default/pods',
    '      kubectl --server http://127.0.0.1:8001 get pods',
    '',
  ].join('\n')
}
