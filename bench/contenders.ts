// The contenders of `npm run bench`, each serving the same upstream: the direct mTLS client (the
// limit), mtls-proxy, and, where installed, nginx as an mTLS reverse proxy and kubectl proxy.
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { ClientFiles } from '../src/demo/pki.js'
import { type Children, freePort, nginxProxyConfig, proxyArgs, ROOT, startNginx, waitFor } from './lib.js'

export interface Target {
  name: string
  url: string
  /** the server's process, for its CPU and memory; none for the direct client */
  pid?: number
  /** CA, certificate and key, for the direct client */
  tls?: string[]
}

export interface Bench {
  /** the Node.js binary the proxy runs on */
  node: string
  work: string
  files: ClientFiles
  children: Children
  upstream: { url: string; port: number }
  nginx: string | undefined
  kubectl: string | undefined
}

/** mtls-proxy from dist/, listening on a free port once it has forwarded its first 200. */
export async function startMtlsProxy (bench: Bench, upstream: string, extra: string[] = []): Promise<{ port: number; pid: number }> {
  const port = await freePort()
  const child = spawn(bench.node, [join(ROOT, 'dist/cli.js'), ...proxyArgs(upstream, bench.files, port), ...extra],
    { stdio: ['ignore', 'ignore', 'inherit'], detached: true })
  bench.children.add(child)
  await waitFor(`http://127.0.0.1:${port}/-/healthz`, 15_000, undefined, 5)
  return { port, pid: child.pid! }
}

export async function startContenders (bench: Bench): Promise<{ targets: Target[]; firstOkMs: number; firstOkAt: number }> {
  const { files, upstream } = bench
  const targets: Target[] = [{ name: 'direct mTLS', url: upstream.url, tls: [files.cacert, files.cert, files.key] }]
  const started = Date.now()
  const proxy = await startMtlsProxy(bench, upstream.url)
  await waitFor(`http://127.0.0.1:${proxy.port}/api/v1/namespaces/default/pods`, 15_000, undefined, 5)
  const firstOkAt = Date.now()
  const firstOkMs = firstOkAt - started
  targets.push({ name: 'mtls-proxy', url: `http://127.0.0.1:${proxy.port}`, pid: proxy.pid })
  if (bench.nginx) {
    const port = await freePort()
    const child = bench.children.add(await startNginx(bench.nginx, join(bench.work, 'proxy'), nginxProxyConfig(port, upstream.port, files)))
    await waitFor(`http://127.0.0.1:${port}/api/v1/pods`)
    targets.push({ name: 'nginx', url: `http://127.0.0.1:${port}`, pid: child.pid! })
  }
  if (bench.kubectl) {
    const port = await freePort()
    const kubeconfig = join(bench.work, 'kubeconfig')
    await writeFile(kubeconfig, [
      'apiVersion: v1', 'kind: Config', 'current-context: b',
      `clusters: [{name: b, cluster: {server: "${upstream.url}", certificate-authority: ${files.cacert}, tls-server-name: localhost}}]`,
      `users: [{name: b, user: {client-certificate: ${files.cert}, client-key: ${files.key}}}]`,
      'contexts: [{name: b, context: {cluster: b, user: b}}]', '',
    ].join('\n'))
    const child = spawn(bench.kubectl, ['proxy', `--port=${port}`, `--kubeconfig=${kubeconfig}`],
      { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, HOME: bench.work }, detached: true })
    bench.children.add(child)
    await waitFor(`http://127.0.0.1:${port}/api/v1/pods`)
    targets.push({ name: 'kubectl proxy', url: `http://127.0.0.1:${port}`, pid: child.pid! })
  }
  return { targets, firstOkMs, firstOkAt }
}
