// Where the CLI listens: a TCP address, or a Unix socket only its owner can use.
import { chmod, lstat, stat, unlink } from 'node:fs/promises'
import { connect } from 'node:net'
import { dirname } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { UsageError } from './errors.js'
import { describeFsError } from './fs-errors.js'

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path)
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

/**
 * A socket file is only as private as its folder: the folder must be the user's own. A socket
 * left by a crashed proxy is replaced; a live one, or anything that is not a socket, is left alone.
 */
async function prepare(path: string): Promise<void> {
  const folder = dirname(path)
  let info
  try {
    info = await stat(folder)
  } catch (err) {
    throw new UsageError(`--unix-socket ${path}: folder ${folder}: ${describeFsError(err)}`)
  }
  const uid = process.getuid?.()
  if (uid !== undefined && info.uid !== uid) {
    throw new UsageError(`--unix-socket ${path}: folder ${folder} belongs to uid ${info.uid}, not to you (uid ${uid}); put the socket in a folder you own, e.g. $XDG_RUNTIME_DIR`)
  }
  let existing
  try {
    existing = await lstat(path)
  } catch {
    return
  }
  if (!existing.isSocket()) throw new UsageError(`--unix-socket ${path} exists and is not a socket; remove it or choose another path`)
  if (await answers(path)) throw new UsageError(`--unix-socket ${path} is in use by a running process (another mtls-proxy?)`)
  await unlink(path)
}

export async function listenUnixSocket(app: FastifyInstance, path: string): Promise<void> {
  await prepare(path)
  // Created 0600 from the start (not chmod-ed after), so no other user can connect even for a moment.
  const umask = process.umask(0o177)
  try {
    await app.listen({ path })
  } finally {
    process.umask(umask)
  }
  await chmod(path, 0o600)
}
