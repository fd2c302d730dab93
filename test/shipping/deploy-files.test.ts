// The deployment files in config/ are what they claim to be.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { ROOT } from '../helpers/root.js'
import { OPTIONS, envName } from '../../src/settings/options.js'

const envNames = new Set(OPTIONS.map((o) => envName(o.name)))

t.test('the Kubernetes manifest: a Deployment with an mtls-proxy sidecar, hardened, probed on the status listener', async (t) => {
  const docs = parseAllDocuments(readFileSync(`${ROOT}/config/kubernetes-sidecar.yaml`, 'utf8'))
  t.same(docs.map((d) => d.errors), docs.map(() => []), 'valid YAML')
  const objects = docs.map((d) => d.toJS() as Record<string, any>)
  t.same(objects.map((o) => `${o.apiVersion}/${o.kind}`), ['apps/v1/Deployment'])
  const pod = objects[0]!.spec.template.spec
  t.same(objects[0]!.spec.selector.matchLabels, objects[0]!.spec.template.metadata.labels, 'the selector matches the pod')
  t.equal(pod.securityContext.runAsNonRoot, true)
  const sidecar = pod.containers.find((c: any) => c.name === 'mtls-proxy')
  const app = pod.containers.find((c: any) => c.name === 'app')
  t.ok(sidecar && app, 'an app container and the sidecar')
  for (const c of pod.containers) {
    t.equal(c.securityContext.readOnlyRootFilesystem, true, `${c.name}: read-only root filesystem`)
    t.equal(c.securityContext.allowPrivilegeEscalation, false, `${c.name}: no privilege escalation`)
    t.ok(c.resources.requests && c.resources.limits, `${c.name}: resources`)
  }
  for (const e of sidecar.env) t.ok(envNames.has(e.name), `${e.name} is a real setting`)
  const env = Object.fromEntries(sidecar.env.map((e: any) => [e.name, e.value]))
  t.equal(env.MTLS_PROXY_ADDRESS, '127.0.0.1', 'the proxy port stays on loopback')
  t.match(app.command.join(' '), /http:\/\/127\.0\.0\.1:8001\//, 'the app talks plain HTTP to the sidecar')
  const statusPort = Number(env.MTLS_PROXY_STATUS_ADDRESS.split(':').pop())
  t.equal(sidecar.ports.find((p: any) => p.name === 'status').containerPort, statusPort)
  t.same(sidecar.readinessProbe.httpGet, { path: '/-/readyz', port: 'status' })
  t.same(sidecar.livenessProbe.httpGet, { path: '/-/healthz', port: 'status' })
  const mount = sidecar.volumeMounts[0]
  t.equal(pod.volumes.find((v: any) => v.name === mount.name).secret.secretName, 'cluster-b-client', 'certificates from a Secret')
  for (const f of ['ca.crt', 'client.crt', 'client.key']) t.ok(Object.values(env).includes(`${mount.mountPath}/${f}`), `${f} from the Secret`)
})

t.test('the systemd unit starts the CLI, reloads with SIGHUP, and is hardened', async (t) => {
  const unit = readFileSync(`${ROOT}/config/mtls-proxy.service`, 'utf8')
  t.match(unit, /^ExecStart=.*mtls-proxy --config \/etc\/mtls-proxy\/mtls-proxy\.yaml$/m)
  t.match(unit, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m)
  t.match(unit, /^RestartPreventExitStatus=2$/m, 'a configuration error is not restarted in a loop')
  for (const option of ['NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=yes', 'PrivateTmp=yes', 'CapabilityBoundingSet=', 'User=mtls-proxy']) {
    t.match(unit, new RegExp(`^${option.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'm'), option)
  }
})
