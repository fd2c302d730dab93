// Reading a file the user named (certificates, keys, kubeconfigs, tokens): a regular file only, up
// to a bound, opened so that nothing can make the open wait. A FIFO opened for reading blocks until
// a writer comes (a pool thread held for good, and every later reload queued behind it); a device
// or a file of gigabytes would be read for ever; neither is a certificate.
import {
  chmod, close, closeSync, constants, fstat, fstatSync, lstat, mkdtemp, open, openSync, read, readSync, realpath, stat, unlink, writeFile,
  type Stats,
} from 'node:fs'
import { promisify } from 'node:util'

/** node:fs's callback API, promisified: node:fs/promises loads readline with it, ~10 ms of every start on Node.js 24. */
export const fsAsync = {
  open: promisify(open),
  fstat: promisify(fstat),
  read: promisify(read),
  close: promisify(close),
  chmod: promisify(chmod),
  lstat: promisify(lstat),
  stat: promisify(stat),
  realpath: promisify(realpath),
  unlink: promisify(unlink),
  mkdtemp: promisify(mkdtemp),
  writeFile: promisify(writeFile),
}

// O_NONBLOCK makes opening a FIFO return at once; on a regular file it changes nothing.
const FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0)

export interface FileText {
  text: string
  /** permission bits of the file read, for warnings about who else may read it */
  mode: number
  /** its owner's uid, for the same */
  uid: number
}

function kind (info: Stats): string {
  if (info.isFIFO()) return 'a FIFO'
  if (info.isDirectory()) return 'a directory'
  if (info.isCharacterDevice()) return 'a character device'
  if (info.isBlockDevice()) return 'a block device'
  if (info.isSocket()) return 'a socket'
  return 'not a file'
}

function check (info: Stats, maxBytes: number): void {
  if (!info.isFile()) throw new Error(`is ${kind(info)}, not a regular file`)
  if (info.size > maxBytes) throw tooLarge(maxBytes)
}

function tooLarge (maxBytes: number): Error {
  const size = maxBytes >= 1024 * 1024 ? `${maxBytes / 1024 / 1024} MiB` : `${maxBytes / 1024} KiB`
  return new Error(`is larger than ${size}, too large for what it should hold`)
}

/** The whole text of a regular file of at most maxBytes; otherwise an error whose message says why. */
export async function readRegularFile (path: string, maxBytes: number): Promise<FileText> {
  const fd = await fsAsync.open(path, FLAGS)
  try {
    const info = await fsAsync.fstat(fd)
    check(info, maxBytes)
    // Read to the end, not to the size seen: the file may be written meanwhile. One byte more tells it grew past the bound.
    // Unfilled: only what was read is ever looked at.
    const buffer = Buffer.allocUnsafe(maxBytes + 1)
    let length = 0
    for (;;) {
      const { bytesRead } = await fsAsync.read(fd, buffer, length, buffer.length - length, null)
      if (bytesRead === 0) break
      length += bytesRead
      if (length > maxBytes) throw tooLarge(maxBytes)
    }
    return { text: buffer.toString('utf8', 0, length), mode: info.mode & 0o7777, uid: info.uid }
  } finally {
    await fsAsync.close(fd)
  }
}

/** The same, synchronously: only for start-up, before anything is served. */
export function readRegularFileSync (path: string, maxBytes: number): FileText {
  const fd = openSync(path, FLAGS)
  try {
    const info = fstatSync(fd)
    check(info, maxBytes)
    const buffer = Buffer.allocUnsafe(maxBytes + 1)
    let length = 0
    for (;;) {
      const bytesRead = readSync(fd, buffer, length, buffer.length - length, null)
      if (bytesRead === 0) break
      length += bytesRead
      if (length > maxBytes) throw tooLarge(maxBytes)
    }
    return { text: buffer.toString('utf8', 0, length), mode: info.mode & 0o7777, uid: info.uid }
  } finally {
    closeSync(fd)
  }
}

/** A file error in words: 'no such file', 'permission denied'. */
export function describeFsError (err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ENOENT') return 'no such file'
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied'
  if (code === 'EISDIR') return 'is a directory'
  return (err as Error).message
}
