// The bundled CLI, as it ships (node dist/cli.js), built into a folder of its own with this
// checkout's modules, removed when the test ends.
import { execFileSync } from 'node:child_process'
import { copyFile, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { ROOT } from './cli.js'
import type { Teardown } from './pki.js'
import { tempDir } from './temp.js'

/** The folder holding dist/ (and package.json, node_modules beside it). */
export async function buildDist (t: Teardown): Promise<string> {
  const dir = await tempDir(t, 'dist')
  execFileSync(process.execPath, [join(ROOT, 'config/bundle.mjs'), '--outdir', join(dir, 'dist')])
  await copyFile(join(ROOT, 'package.json'), join(dir, 'package.json'))
  await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'))
  return dir
}
