// Tests that run a client as another account (uid 65534, nobody) need root, and a checkout that
// account can enter: tap loads its hooks into every child from this checkout's node_modules.
import { spawnSync } from 'node:child_process'
import { ROOT } from './root.js'

export const OTHER_UID = 65534

/** Why a client cannot be run as another uid here (a skip reason), or false when it can. */
export function cannotRunAsOtherUid (): string | false {
  if (process.getuid?.() !== 0) return 'needs root to run a client as another uid'
  const ran = spawnSync(process.execPath, ['-e', 'console.log("ran")'],
    { uid: OTHER_UID, gid: OTHER_UID, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
  return ran.stdout?.trim() === 'ran' ? false : `uid ${OTHER_UID} cannot run node from this checkout (${ROOT} or a folder above it is closed to others)`
}
