// Two clusters that share nothing: each CA signs only its own API server and client, each client its
// own identity (demo-admin, prod-admin), their files in a folder removed with the test.
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { writeClientFiles, type ClientFiles } from '../../src/demo/pki.js'
import { createCA, createDemoPki, type DemoPki, type Teardown } from './pki.js'
import { tempDir } from './temp.js'

export interface TwoClusters {
  dir: string
  devPki: DemoPki
  prodPki: DemoPki
  /** in dir/dev and dir/prod: a kubeconfig in dir names them as dev/… and prod/… */
  devFiles: ClientFiles
  prodFiles: ClientFiles
}

export async function twoClusters (t: Teardown, name: string): Promise<TwoClusters> {
  const dir = await tempDir(t, `${name}`)
  const devPki = await createDemoPki()
  const prodCa = await createCA('prod CA')
  const prodPki: DemoPki = {
    ca: prodCa,
    server: await prodCa.issue({ commonName: 'kube-apiserver', usage: 'server' }),
    client: await prodCa.issue({ commonName: 'prod-admin', usage: 'client' }),
  }
  await mkdir(join(dir, 'dev'))
  await mkdir(join(dir, 'prod'))
  return { dir, devPki, prodPki, devFiles: await writeClientFiles(devPki, join(dir, 'dev')), prodFiles: await writeClientFiles(prodPki, join(dir, 'prod')) }
}

/** A kubeconfig's entries for both, as contexts dev (the current one) and prod, for a kubeconfig in the clusters' folder. */
export function twoContexts (servers: { dev: string; prod: string }) {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'dev',
    clusters: [
      { name: 'dev', cluster: { server: servers.dev, 'certificate-authority': 'dev/ca.crt' } },
      { name: 'prod', cluster: { server: servers.prod, 'certificate-authority': 'prod/ca.crt' } },
    ],
    users: [
      { name: 'dev-admin', user: { 'client-certificate': 'dev/client.crt', 'client-key': 'dev/client.key' } as Record<string, unknown> },
      { name: 'prod-admin', user: { 'client-certificate': 'prod/client.crt', 'client-key': 'prod/client.key' } as Record<string, unknown> },
    ],
    contexts: [
      { name: 'dev', context: { cluster: 'dev', user: 'dev-admin' } },
      { name: 'prod', context: { cluster: 'prod', user: 'prod-admin' } },
    ],
  }
}

/**
 * A kubeconfig (written to `file`) for one API server with two contexts on it: `plain`, the current
 * one, in no namespace; `staging`, in kube-system (the demo API server's other namespace).
 */
export async function namespacedKubeconfig (file: string, server: string, files: ClientFiles): Promise<string> {
  await writeFile(file, stringify({
    'current-context': 'plain',
    clusters: [{ name: 'demo', cluster: { server, 'certificate-authority': files.cacert } }],
    users: [{ name: 'admin', user: { 'client-certificate': files.cert, 'client-key': files.key } }],
    contexts: [{ name: 'plain', context: { cluster: 'demo', user: 'admin' } },
      { name: 'staging', context: { cluster: 'demo', user: 'admin', namespace: 'kube-system' } }],
  }))
  return file
}
