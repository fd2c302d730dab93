// The tests' temp folders. Each is removed by its test's teardown, which tap runs on a timeout too; a
// process killed outright runs nothing, so a folder's name carries the pid of the test process that
// made it, and the next run (test/before.ts) removes those whose process is gone.
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Teardown } from './pki.js'

const PREFIX = 'mtls-proxy-test-'
const OURS = /^mtls-proxy-test-(\d+)-/

/** A new folder in the system's temp folder, removed when the test ends. */
export async function tempDir (t: Teardown, name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `${PREFIX}${process.pid}-${name}-`))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: alive, another user's
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Removes the temp folders of test processes that are gone (killed before their teardown ran); says which. */
export async function removeLeftovers (): Promise<string[]> {
  const left = (await readdir(tmpdir())).filter((name) => {
    const pid = OURS.exec(name)?.[1]
    return pid !== undefined && !alive(Number(pid))
  })
  await Promise.all(left.map((name) => rm(join(tmpdir(), name), { recursive: true, force: true })))
  return left
}
