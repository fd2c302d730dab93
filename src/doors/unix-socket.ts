// Where the CLI listens: a TCP address, or a Unix socket only its owner can use.
import type { Stats } from 'node:fs'
import { connect } from 'node:net'
import { dirname } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { UsageError } from '../util/errors.js'
import { describeFsError, fsAsync } from '../util/files.js'

function answers (path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path)
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

// Who may write to a folder, as the mode says.
const GROUP_OR_OTHERS_WRITE = 0o022
const STICKY = 0o1000

/**
 * A socket file is only as private as the folders above it: whoever may write to one may unlink the
 * socket (or rename a folder on its path) and put an impostor in its place, which then receives the
 * next client's request, headers and all. So every folder from the socket's up to / must be the
 * user's own or root's, and no one else may write to it unless the sticky bit keeps them from
 * removing what is not theirs (as /tmp has): what OpenSSH demands of the files it trusts. A socket
 * left by a crashed proxy is replaced; a live one, another user's, or anything that is not a socket
 * is left alone.
 */
async function prepare (path: string): Promise<void> {
  const uid = process.getuid?.()
  let folder: string
  try {
    folder = await fsAsync.realpath(dirname(path))
  } catch (err) {
    throw new UsageError(`--unix-socket ${path}: folder ${dirname(path)}: ${describeFsError(err)}`)
  }
  for (let dir = folder; ; dir = dirname(dir)) {
    let info
    try {
      info = await fsAsync.stat(dir)
    } catch (err) {
      throw new UsageError(`--unix-socket ${path}: folder ${dir}: ${describeFsError(err)}`)
    }
    const which = dir === folder ? 'folder' : 'the folder above it,'
    if (uid !== undefined && info.uid !== uid && info.uid !== 0) {
      throw new UsageError(`--unix-socket ${path}: ${which} ${dir} belongs to uid ${info.uid}, not to you (uid ${uid}); put the socket in a folder you own, e.g. $XDG_RUNTIME_DIR`)
    }
    if ((info.mode & GROUP_OR_OTHERS_WRITE) !== 0 && (info.mode & STICKY) === 0) {
      const mode = (info.mode & 0o7777).toString(8).padStart(4, '0')
      throw new UsageError(`--unix-socket ${path}: ${which} ${dir} (mode ${mode}) can be written by other users, who could replace the socket with their own; use a folder only you can write to (chmod go-w ${dir}), e.g. $XDG_RUNTIME_DIR`)
    }
    if (dir === dirname(dir)) break
  }
  let existing
  try {
    existing = await fsAsync.lstat(path)
  } catch {
    return
  }
  if (!existing.isSocket()) throw new UsageError(`--unix-socket ${path} exists and is not a socket; remove it or choose another path`)
  if (uid !== undefined && existing.uid !== uid) {
    throw new UsageError(`--unix-socket ${path} exists and belongs to uid ${existing.uid}; choose another path`)
  }
  if (await answers(path)) throw new UsageError(`--unix-socket ${path} is in use by a running process (another mtls-proxy?)`)
  await fsAsync.unlink(path)
}

/** The checks of listening, made before the slow part of the start: a socket in use, or in an unsafe folder, is said at once. */
export const checkUnixSocket = prepare

// How often the socket file is checked to still be ours.
const SOCKET_CHECK_INTERVAL_MS = 1_000

const sameFile = (a: Stats, b: Stats) => a.dev === b.dev && a.ino === b.ino

/**
 * Listens on the socket; afterwards checks every second that the file at `path` is still the one
 * created, and calls onLost once (with why) if it was removed or replaced: new clients of that path
 * no longer reach this proxy.
 */
export async function listenUnixSocket (app: FastifyInstance, path: string, onLost: (reason: string) => void): Promise<void> {
  await prepare(path)
  // Created 0600 from the start (not chmod-ed after), so no other user can connect even for a moment.
  const umask = process.umask(0o177)
  try {
    await app.listen({ path })
  } finally {
    process.umask(umask)
  }
  await fsAsync.chmod(path, 0o600)
  const ours = await fsAsync.lstat(path)
  let checking = false
  const timer = setInterval(() => {
    if (checking) return
    checking = true
    void fsAsync.lstat(path).then(
      (now) => (sameFile(now, ours)
        ? undefined
        : `the socket file ${path} was replaced by another (${now.isSocket() ? 'a socket' : 'not a socket'}, owner uid ${now.uid})`),
      () => `the socket file ${path} was removed`
    ).then((lost) => {
      checking = false
      if (!lost) return
      clearInterval(timer)
      onLost(`${lost}: new clients of that path no longer reach this proxy; restart it`)
    })
  }, SOCKET_CHECK_INTERVAL_MS)
  timer.unref()
  app.server.once('close', () => clearInterval(timer))
}
