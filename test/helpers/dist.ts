// The bundled CLI, as it ships (node dist/cli.js). One bundle serves a whole run: test/before.ts (tap's
// `before` step) builds it into .tap/bundle/, and `bundle()` builds it there only when that step did not
// run (a test file run with node alone) or the sources changed since.
import { execFile } from 'node:child_process'
import { copyFile, mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ROOT } from './root.js'

const run = promisify(execFile)

// dist/cli.js with package.json beside dist/, as installed; node_modules is found up the tree, in the
// checkout. Under .tap/, which git ignores and tap leaves out of coverage.
const BUNDLE = join(ROOT, '.tap/bundle')
const BUNDLED_CLI = join(BUNDLE, 'dist/cli.js')

// What the bundle is made from: a change to any of these makes it stale.
const INPUTS = ['src', 'config/bundle.mjs', 'package.json']

async function newest (path: string): Promise<number> {
  const info = await stat(path)
  if (!info.isDirectory()) return info.mtimeMs
  const entries = await readdir(path)
  return Math.max(info.mtimeMs, ...await Promise.all(entries.map((e) => newest(join(path, e)))))
}

/**
 * Builds .tap/bundle/ afresh. Built beside it, then each file renamed into place with cli.js last, so a test
 * process building at the same time, or running the CLI, never sees half a bundle.
 */
export async function buildBundle (): Promise<string> {
  await mkdir(join(BUNDLE, 'dist'), { recursive: true })
  const work = await mkdtemp(join(ROOT, '.tap/bundle-'))
  try {
    await run(process.execPath, [join(ROOT, 'config/bundle.mjs'), '--outdir', join(work, 'dist')])
    await copyFile(join(ROOT, 'package.json'), join(work, 'package.json'))
    for (const file of ['package.json', 'dist/package.json', 'dist/healthcheck.js', 'dist/cli.js']) await rename(join(work, file), join(BUNDLE, file))
  } finally {
    await rm(work, { recursive: true, force: true })
  }
  return BUNDLE
}

async function fresh (): Promise<boolean> {
  const built = await stat(BUNDLED_CLI).then((s) => s.mtimeMs, () => 0)
  const sources = Math.max(...await Promise.all(INPUTS.map((p) => newest(join(ROOT, p)))))
  return built > sources
}

let ready: Promise<string> | undefined

/** The folder of the run's bundle (dist/ and package.json), built first when missing or older than the sources (once per process). */
export function bundle (): Promise<string> {
  ready ??= fresh().then((ok) => (ok ? BUNDLE : buildBundle()))
  return ready
}

/** The run's bundled CLI, ready to spawn with node. */
export async function bundledCli (): Promise<string> {
  await bundle()
  return BUNDLED_CLI
}
