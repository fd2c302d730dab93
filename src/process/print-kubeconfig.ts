// `mtls-proxy kubeconfig`: the kubeconfig for a proxy the same settings start, printed. Its clusters
// are named and namespaced from the kubeconfig's contexts alone: no credential is read, no exec
// plugin run, so it says the same whether or not the proxy, or its API servers, are up.
import { existsSync } from 'node:fs'
import { nameClusters } from '../clusters/pins.js'
import type { KubeconfigCommand } from '../settings/types.js'
import { kubeconfigText, listenUrl, proxyKubeconfig, servedOf } from './proxy-kubeconfig.js'

export async function printedKubeconfig (command: KubeconfigCommand): Promise<string> {
  const settings = command.clusterSettings
  const kubeconfig = settings.credentials.kubeconfig
  // No kubeconfig where kubectl would look, and none named: the proxy is given its server another way.
  const none = command.kubeconfigOptional && kubeconfig !== undefined && !kubeconfig.files.some((f) => existsSync(f))
  const pins = await nameClusters(none ? { ...settings, credentials: { ...settings.credentials, kubeconfig: undefined } } : settings)
  return kubeconfigText(proxyKubeconfig(listenUrl(command.address, command.port), servedOf(pins, settings.clusters)), command.output)
}
