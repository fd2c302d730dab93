// The container's HEALTHCHECK, without curl in the image: GET /-/healthz on the listener the
// MTLS_PROXY_* environment names (the status listener when there is one). Exit 0 when healthy.
const env = process.env
function target(): string {
  const status = env.MTLS_PROXY_STATUS_ADDRESS
  if (status) return `http://${status.replace(/^0\.0\.0\.0:/, '127.0.0.1:').replace(/^\[::\]:/, '[::1]:')}/-/healthz`
  const address = env.MTLS_PROXY_ADDRESS && !['0.0.0.0', '::'].includes(env.MTLS_PROXY_ADDRESS) ? env.MTLS_PROXY_ADDRESS : '127.0.0.1'
  return `http://${address.includes(':') ? `[${address}]` : address}:${env.MTLS_PROXY_PORT ?? '8001'}/-/healthz`
}

const url = target()
fetch(url, { signal: AbortSignal.timeout(3_000) })
  .then((res) => {
    if (!res.ok) process.stderr.write(`${url}: HTTP ${res.status}\n`)
    process.exit(res.ok ? 0 : 1)
  }, (err: unknown) => {
    process.stderr.write(`${url}: ${(err as Error).message}\n`)
    process.exit(1)
  })
