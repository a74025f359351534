import { close, closeSync, constants, fstat, fstatSync, open, openSync, read, readlink, readlinkSync, readSync, realpathSync, type Stats } from 'node:fs'
import { join, relative } from 'node:path'

/** The file on disk is not the one data.dsync describes (an rsync ran after gendsync). */
export class StaleFileError extends Error {
  constructor(readonly path: string, readonly reason: string) {
    super(`${path}: ${reason}`)
  }
}

/** What data.dsync (and gendsync's hash cache) say a file on disk must be. */
export interface Expected {
  /** The repository folder the file must lie in, not through any symbolic link. */
  root: string
  size: number
  /** Whole seconds. */
  mtime: number
  /** The inode gendsync hashed, when its hash cache agrees with data.dsync on size and mtime. */
  ino?: number
}

/**
 * The last component is never followed: a file swapped for a symlink after gendsync (with the
 * target's size and mtime matched) must not serve the target's bytes.
 */
const FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW

/**
 * Opens a repository file without following symbolic links, then checks where the descriptor
 * really points (Linux names it in /proc/self/fd): a parent folder swapped for a link to
 * another place is refused too, with no window between check and open. A plain descriptor,
 * not a FileHandle: the fd cache also reads it synchronously (fd-cache.ts), and fs's callback
 * calls skip the promise API's per-call objects.
 */
export async function openRepoFile(path: string, root: string): Promise<number> {
  let fd: number
  try {
    fd = await new Promise<number>((resolve, reject) => open(path, FLAGS, (err, n) => err ? reject(err) : resolve(n)))
  } catch (err) {
    throw openError(path, err)
  }
  try {
    let real: string | undefined
    try {
      real = await new Promise<string>((resolve, reject) => readlink(`/proc/self/fd/${fd}`, (err, link) => err ? reject(err) : resolve(link)))
    } catch {
      real = undefined // no /proc: the parent check below resolves the path instead
    }
    checkWhere(path, root, real)
    return fd
  } catch (err) {
    close(fd, () => undefined)
    throw err
  }
}

/** The synchronous twin of openRepoFile (for whole-file reads of small files); returns a descriptor. */
export function openRepoFileSync(path: string, root: string): number {
  let fd: number
  try {
    fd = openSync(path, FLAGS)
  } catch (err) {
    throw openError(path, err)
  }
  try {
    let real: string | undefined
    try {
      real = readlinkSync(`/proc/self/fd/${fd}`)
    } catch {
      real = undefined
    }
    checkWhere(path, root, real)
    return fd
  } catch (err) {
    closeSync(fd)
    throw err
  }
}

/** openRepoFileSync, then the descriptor checked against what data.dsync says (StaleFileError if not). */
export function openCheckedSync(path: string, want: Expected): number {
  const fd = openRepoFileSync(path, want.root)
  try {
    const problem = mismatch(fstatSync(fd), want)
    if (problem) throw new StaleFileError(path, problem)
  } catch (err) {
    closeSync(fd)
    throw err
  }
  return fd
}

/** The asynchronous twin of openCheckedSync: openRepoFile, then the same check. */
export async function openChecked(path: string, want: Expected): Promise<number> {
  const fd = await openRepoFile(path, want.root)
  try {
    const problem = mismatch(await fstatAsync(fd), want)
    if (problem) throw new StaleFileError(path, problem)
  } catch (err) {
    close(fd, () => undefined)
    throw err
  }
  return fd
}

export function fstatAsync(fd: number): Promise<Stats> {
  return new Promise((resolve, reject) => fstat(fd, (err, st) => err ? reject(err) : resolve(st)))
}

/**
 * Reads exactly `length` bytes at `position` of the open file `path` into `out`. A file
 * shrinking under an open descriptor is the same kind of change as a new mtime: StaleFileError.
 */
export function readExactlySync(fd: number, path: string, out: Buffer, outOffset: number, length: number, position: number): void {
  for (let done = 0; done < length;) {
    const n = readSync(fd, out, outOffset + done, length - done, position + done)
    if (n === 0) throw new StaleFileError(path, 'shorter than data.dsync says')
    done += n
  }
}

/** The asynchronous twin of readExactlySync (through libuv's pool). */
export async function readExactly(fd: number, path: string, out: Buffer, outOffset: number, length: number, position: number): Promise<void> {
  for (let done = 0; done < length;) {
    const n = await new Promise<number>((resolve, reject) =>
      read(fd, out, outOffset + done, length - done, position + done, (err, bytes) => err ? reject(err) : resolve(bytes)))
    if (n === 0) throw new StaleFileError(path, 'shorter than data.dsync says')
    done += n
  }
}

/** Why an open file is not the one data.dsync describes, or undefined when it is. */
export function mismatch(st: { size: number; mtimeMs: number; ino: number; isFile(): boolean }, want: Omit<Expected, 'root'>): string | undefined {
  const seconds = Math.floor(st.mtimeMs / 1000)
  if (!st.isFile() || st.size !== want.size || seconds !== want.mtime) {
    return `changed since gendsync (size ${st.size}, mtime ${seconds}; data.dsync says ${want.size}, ${want.mtime})`
  }
  // Same size and mtime but another inode: replaced (a hardlink to another file, a copy).
  if (want.ino !== undefined && st.ino !== want.ino) return `replaced since gendsync (inode ${st.ino}, gendsync hashed ${want.ino})`
  return undefined
}

interface Root {
  /** The repository folder with a trailing slash, as the piece reader prefixes file paths. */
  prefix: string
  /** Its real path (symbolic links resolved), also with a trailing slash. */
  realPrefix: string
  real: string
}

const roots = new Map<string, Root>()

function rootOf(root: string): Root {
  let r = roots.get(root)
  if (r === undefined) {
    const real = realpathSync(root)
    r = { prefix: root.endsWith('/') ? root : `${root}/`, realPrefix: real.endsWith('/') ? real : `${real}/`, real }
    roots.set(root, r)
  }
  return r
}

function checkWhere(path: string, root: string, real: string | undefined): void {
  const r = rootOf(root)
  // The real root plus the same relative path. Paths under the root's own prefix (all the
  // piece reader makes) take it by appending: join(relative()) cost 6.4 µs a file against 0.6
  // (microbenchmark, 1,000 paths of the bench tree, load 16); the five syscalls of a small
  // file's read cost ~11 µs together (docs/HOST.md). The kernel's answer
  // is a normal path, so a relative part that is not (never so for data.dsync's paths) can
  // only fail to match: refused, never let through.
  const expected = path.startsWith(r.prefix) ? r.realPrefix + path.slice(r.prefix.length) : join(r.real, relative(root, path))
  // Torrent paths never pass through a link (gendsync records links, it does not follow them),
  // so the file must be exactly where its path says, inside the repository.
  const actual = real ?? realpathSync(path)
  if (actual !== expected) throw new StaleFileError(path, `reached through a symbolic link (${actual})`)
}

function openError(path: string, err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ELOOP') return new StaleFileError(path, 'is a symbolic link now')
  if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return new StaleFileError(path, 'missing on disk')
  return err
}
