// A real kubectl for end-to-end tests: the versioned kubectl.1.32 beside the `kubectl` on PATH (that
// one is a dispatcher that asks the server for its version first).
import { existsSync, realpathSync } from 'node:fs'
import { dirname, join } from 'node:path'

export function findKubectl (): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const candidate = join(dir, 'kubectl')
    if (!existsSync(candidate)) continue
    const versioned = join(dirname(realpathSync(candidate)), 'kubectl.1.32')
    if (existsSync(versioned)) return versioned
  }
  return undefined
}

export const NO_KUBECTL = 'kubectl.1.32 not found beside a kubectl on PATH'
