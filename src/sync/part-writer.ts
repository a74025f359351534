import { createHash, type Hash } from 'node:crypto'
import { closeSync, fchmodSync, futimesSync, mkdirSync, openSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { PartFds } from './part-fds.js'
import { ITEM_CHECKED, ITEM_LAST, ITEM_UNCHECKED, type StagedMeta } from './stage-items.js'

/**
 * Bytes of a file read back at a time to hash pieces that were written ahead of its hashed
 * prefix (PartWriter.hashIn), into one buffer per writer, reused.
 */
const READ_BACK_BYTES = 1 << 20

/**
 * Staging subfolders, one per stage worker: `<staging>/<n>/<sha256>[.part]`, n from the first
 * hex digit. Creating a file is most of a small file's cost in a pull (inode and directory
 * entry; ~100 µs of CPU a file at 200,000 files, measured alone) and Linux creates in one
 * folder at a time (the folder's lock): two workers in two folders create side by side.
 */
export const STAGE_DIRS = 2

export function stageShard(hex: string): number {
  return parseInt(hex[0], 16) % STAGE_DIRS
}

/**
 * Where content `hex` is staged (`suffix` '.part' while written). `dir` is the staging folder
 * as `Staging` makes it (joined, so normal): appended to, not joined (path.join per file was
 * ~1% of a 200,000-file pull's event loop).
 */
export function stagedPath(dir: string, hex: string, suffix = ''): string {
  return `${dir}/${stageShard(hex)}/${hex}${suffix}`
}

/**
 * Where a finished file placed ahead goes: `<staging>/folders/<path>`, inside the new folders
 * made ahead there (new-folders.ts), which the apply moves into DEST whole.
 */
export function aheadPath(dir: string, path: string): string {
  return `${dir}/folders/${path}`
}

/**
 * Runs `fn` (which makes a name at `path`); when `path`'s folder is not there yet (the folders
 * worker has not reached it), makes it and runs `fn` again.
 */
function withParent<T>(path: string, fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    mkdirSync(path.slice(0, path.lastIndexOf('/')), { recursive: true, mode: 0o755 })
    return fn()
  }
}

interface PartState {
  hash: Hash
  /** Bytes hashed so far: the file's prefix [0, hashed) went through `hash`. */
  hashed: number
  /**
   * Pieces written ahead of `hashed`: file offset -> length. Not copies: their bytes are read
   * back from the file (the page cache) once the gap before them fills.
   */
  ahead: Map<number, number>
  /** Incremental hashing given up (a piece behind `hashed`): re-read at the end. */
  reread: boolean
  /** A piece came unchecked (ITEM_UNCHECKED): a mismatch keeps the `.part` for the transfer to read back. */
  unchecked: boolean
}

export type PartOutcome = 'verified' | 'mismatch'

/**
 * Writes verified pieces into `<staging>/<sha256>.part` and hashes each file's SHA-256 as its
 * bytes arrive, so a finished file is checked without reading it back. A piece arriving ahead
 * of the hashed prefix is only written; once the gap before it fills it is read back from the
 * file and hashed (a copy out of the page cache into one reused buffer: holding a copy of it
 * instead was a fresh allocation per piece, ~1,400 page faults per stage worker in a `mirror`
 * bootstrap, at ~16 µs each on this machine). A file whose prefix never completes (pieces kept
 * from a killed run) is read back once at the end. A file that matches becomes `<sha256>` by one rename; one that does not is deleted, unless
 * it holds pieces that came unchecked (ITEM_UNCHECKED): then its `.part` stays to be read back.
 * Synchronous: it runs on the stage worker thread, off the event loop.
 */
export class PartWriter {
  private readonly parts = new Map<string, PartState>()
  private readonly fds = new PartFds(hex => this.partPath(hex))
  private scratch: Buffer | undefined

  constructor(readonly dir: string) {}

  partPath(hex: string): string {
    return stagedPath(this.dir, hex, '.part')
  }

  /**
   * Writes `data` at `offset` of the file; ITEM_LAST in `flags` says no other piece of it is
   * still to come (those written before are on disk), so the file is checked and finished,
   * and given `meta` (mode, mtime) before it is closed: the apply then only renames it. With
   * `ahead` (a path of the plan) it ends at aheadPath(dir, ahead) instead of its staged name, and the
   * apply does not even rename it (new-folders.ts).
   */
  write(hex: string, offset: number, data: Uint8Array, size: number, flags: number, meta?: StagedMeta, ahead?: string): PartOutcome | undefined {
    const last = (flags & ITEM_LAST) !== 0
    const to = ahead === undefined ? stagedPath(this.dir, hex) : aheadPath(this.dir, ahead)
    if (last && offset === 0 && data.length === size && !this.parts.has(hex)) return this.writeWhole(hex, to, data, (flags & ITEM_CHECKED) !== 0, meta)
    const st = this.state(hex)
    if (flags & ITEM_UNCHECKED) st.unchecked = true
    writeFully(this.fds.get(hex), data, offset)
    this.hashIn(hex, st, offset, data)
    if (!last) return undefined
    return this.finish(hex, to, st, size, meta)
  }

  /**
   * A file that is one piece: hashed from memory (unless the event loop did already), then
   * written straight under its staged name, no `.part` and no rename (a rename in a folder of
   * 100,000 names cost as much as creating the file). A run killed mid-write leaves a file
   * shorter than its size, which `Staging.has` does not count as staged.
   */
  private writeWhole(hex: string, to: string, data: Uint8Array, checked: boolean, meta: StagedMeta | undefined): PartOutcome {
    if (!checked && createHash('sha256').update(data).digest('hex') !== hex) return 'mismatch'
    const { fd, mode } = withParent(to, () => createStaged(to, meta))
    try {
      writeFully(fd, data, 0)
      if (meta) setMeta(fd, meta, mode !== meta.mode)
    } catch (err) {
      // The name is the staged (or placed-ahead) one: a file cut short (disk full) must not
      // stay under it, where the apply would take it as verified.
      closeSync(fd)
      unlinkSync(to)
      throw err
    }
    closeSync(fd)
    return 'verified'
  }

  private hashIn(hex: string, st: PartState, offset: number, data: Uint8Array): void {
    if (st.reread) return
    if (offset !== st.hashed) {
      if (offset > st.hashed) st.ahead.set(offset, data.length)
      else this.giveUp(st)
      return
    }
    st.hash.update(data)
    st.hashed += data.length
    for (let next = st.ahead.get(st.hashed); next !== undefined; next = st.ahead.get(st.hashed)) {
      st.ahead.delete(st.hashed)
      this.hashFromFile(hex, st, next)
    }
  }

  /** Hashes the next `length` bytes of the file, at `st.hashed`, read back from it. */
  private hashFromFile(hex: string, st: PartState, length: number): void {
    const buf = this.scratch ??= Buffer.allocUnsafeSlow(READ_BACK_BYTES)
    const fd = this.fds.get(hex)
    for (let left = length; left > 0;) {
      const n = readSync(fd, buf, 0, Math.min(left, buf.length), st.hashed)
      // Shorter than what was written: the file changed under us; its SHA-256 is read whole at the end.
      if (n <= 0) return this.giveUp(st)
      st.hash.update(buf.subarray(0, n))
      st.hashed += n
      left -= n
    }
  }

  private giveUp(st: PartState): void {
    st.reread = true
    st.ahead.clear()
  }

  private finish(hex: string, to: string, st: PartState, size: number, meta: StagedMeta | undefined): PartOutcome {
    const fd = this.fds.get(hex)
    const digest = !st.reread && st.hashed === size ? st.hash.digest('hex') : sha256OfFd(fd)
    if (digest !== hex) {
      this.forget(hex, st)
      // Unchecked pieces: the transfer reads them back (part-read-back.ts) and fetches the bad ones again.
      if (!st.unchecked) unlinkSync(this.partPath(hex))
      return 'mismatch'
    }
    withParent(to, () => renameSync(this.partPath(hex), to))
    // After the rename: a .part never has a mode that could keep a later run from writing it.
    try {
      if (meta) setMeta(fd, meta)
    } finally {
      this.forget(hex, st)
    }
    return 'verified'
  }

  private state(hex: string): PartState {
    let st = this.parts.get(hex)
    if (!st) {
      st = { hash: createHash('sha256'), hashed: 0, ahead: new Map(), reread: false, unchecked: false }
      this.parts.set(hex, st)
    }
    return st
  }

  private forget(hex: string, st: PartState): void {
    this.giveUp(st)
    this.parts.delete(hex)
    this.fds.close(hex)
  }

  /** Closes every open part (the files stay, to be resumed by a later run). */
  closeAll(): void {
    this.fds.closeAll()
    for (const st of this.parts.values()) this.giveUp(st)
    this.parts.clear()
  }
}

/** The process's umask, read once (the mode a new file gets is the one asked for minus these bits). */
let umask: number | undefined

/**
 * Creates a one-piece file's staged name with the mode it is to have when that mode lets us
 * write it (most files: 0644), so that no fchmod follows (one call per file: 20,000-200,000 in
 * a bootstrap). `mode` is what the file has now: known only when this call created it; a name
 * left by a killed run (cut short) is truncated and keeps its old mode, so it gets the fchmod.
 */
function createStaged(path: string, meta: StagedMeta | undefined): { fd: number; mode: number | undefined } {
  const wanted = meta && meta.mode & 0o200 && meta.mode <= 0o777 ? meta.mode : 0o644
  try {
    umask ??= process.umask()
    return { fd: openSync(path, 'wx', wanted), mode: wanted & ~umask }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    return { fd: openSync(path, 'w', 0o644), mode: undefined }
  }
}

/**
 * Mode (unless `chmod` is false: the file has it already), then mtime (atime the same, as the
 * apply sets them): after the last write, or the write would move it.
 */
function setMeta(fd: number, meta: StagedMeta, chmod = true): void {
  if (chmod) fchmodSync(fd, meta.mode)
  futimesSync(fd, meta.mtime, meta.mtime)
}

function writeFully(fd: number, data: Uint8Array, position: number): void {
  let done = 0
  while (done < data.length) done += writeSync(fd, data, done, data.length - done, position + done)
}

export function sha256OfFd(fd: number): string {
  const hash = createHash('sha256')
  const buf = Buffer.allocUnsafe(1 << 20)
  let pos = 0
  for (;;) {
    const n = readSync(fd, buf, 0, buf.length, pos)
    if (n === 0) break
    hash.update(buf.subarray(0, n))
    pos += n
  }
  return hash.digest('hex')
}
