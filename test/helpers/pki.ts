import { createDemoPki, writeClientFiles, type ClientFiles, type DemoPki } from '../../src/demo/pki.js'
import { tempDir } from './temp.js'

export { createCA, createDemoPki, type DemoPki } from '../../src/demo/pki.js'

export interface Teardown {
  teardown(fn: () => unknown): void
}

/** A fresh PKI and its client files in a temp folder removed when the test ends. */
export async function pkiWithFiles (t: Teardown, pki?: DemoPki): Promise<{ pki: DemoPki; files: ClientFiles }> {
  const p = pki ?? await createDemoPki()
  const files = await writeClientFiles(p, await tempDir(t, 'pki'))
  return { pki: p, files }
}
