// How many workers `--workers auto` means.
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { MAX_WORKERS } from '../../settings/listening.js'

/** The cores this process may use, within its cgroup's CPU quota. */
export function cpuCount (): number {
  let quota = Infinity
  const read = (file: string) => { try { return readFileSync(file, 'utf8').trim() } catch { return undefined } }
  const v2 = read('/sys/fs/cgroup/cpu.max')?.split(' ')
  if (v2 && v2[0] !== 'max') quota = Number(v2[0]) / Number(v2[1])
  const v1 = Number(read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us'))
  if (v1 > 0) quota = Math.min(quota, v1 / Number(read('/sys/fs/cgroup/cpu/cpu.cfs_period_us')))
  const cores = Math.min(availableParallelism(), Number.isFinite(quota) && quota > 0 ? Math.ceil(quota) : Infinity)
  return Math.max(1, Math.min(cores, MAX_WORKERS))
}
