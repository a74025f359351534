import { closeSync } from 'node:fs'
import { openCheckedSync, readExactlySync, type Expected } from './repo-file.js'
import type { ReadBuffers } from './read-buffers.js'
import type { ColdDisk } from './cold-disk.js'

/** Files up to this size are read whole, in one go, when their first block is asked for. */
export const WHOLE_FILE_MAX = 256 * 1024
/** Whole files kept for their next blocks (the client asks for a piece's blocks back to back). */
const KEEP_BYTES = 16 << 20
/** A kept copy is trusted this long, as an open handle is by the fd cache (rsync --inplace). */
const KEEP_MS = 250

interface Kept {
  data: Buffer
  at: number
}

/**
 * Whole-file reads for small files, synchronously: open, fstat (size, mtime and inode checked
 * against data.dsync and gendsync's cache), one read, close. From the page cache that is ~8 µs of CPU a file,
 * against ~50 µs for the same four calls through promises and libuv's pool (measured on
 * 20,000 files of 0.1-3 KB), and a file of one block needs no descriptor kept open. A file of
 * several blocks stays in memory (bounded) for the requests that follow. A read that took
 * long (the disk, not the cache) would stall every peer: the caller asks ColdDisk
 * (cold-disk.ts), which times every read, whether to read on the event loop at all.
 */
export class SmallFileReader {
  private readonly kept = new Map<string, Kept>()
  private keptBytes = 0
  /** Files read whole since start. */
  filesRead = 0

  /**
   * @param buffers where file buffers come from and go back to (read-buffers.ts).
   * @param disk times each read: the caller asks it whether the disk is cold first.
   */
  constructor(private readonly buffers: ReadBuffers, private readonly disk: ColdDisk) {}

  /**
   * The whole file, checked against the size and mtime data.dsync records, with one reference
   * for the caller (read-buffers.ts: released once the block cut from it has been sent).
   */
  read(path: string, want: Expected, wholeRequested: boolean): Buffer {
    const k = this.kept.get(path)
    if (k && k.data.length === want.size && Date.now() - k.at <= KEEP_MS) {
      this.buffers.ref(k.data)
      return k.data
    }
    const started = this.disk.started()
    const data = readChecked(path, want, this.buffers)
    this.filesRead++
    this.disk.finished(started)
    if (!wholeRequested) {
      // The reference `take` gave is the kept copy's; the caller gets one more.
      this.keep(path, data)
      this.buffers.ref(data)
    }
    return data
  }

  /** Drops a kept copy (the file was found changed). */
  forget(path: string): void {
    const k = this.kept.get(path)
    if (!k) return
    this.kept.delete(path)
    this.keptBytes -= k.data.length
    this.buffers.release(k.data)
  }

  private keep(path: string, data: Buffer): void {
    this.forget(path)
    this.kept.set(path, { data, at: Date.now() })
    this.keptBytes += data.length
    for (const [p, k] of this.kept) {
      if (this.keptBytes <= KEEP_BYTES) break
      this.kept.delete(p)
      this.keptBytes -= k.data.length
      this.buffers.release(k.data)
    }
  }
}

/** Opened and checked as the fd cache does (no symbolic link followed, inside the repository). */
function readChecked(path: string, want: Expected, buffers: ReadBuffers): Buffer {
  const fd = openCheckedSync(path, want)
  const size = want.size
  try {
    const data = buffers.take(size)
    try {
      readExactlySync(fd, path, data, 0, size, 0)
    } catch (err) {
      buffers.release(data)
      throw err
    }
    return data
  } finally {
    closeSync(fd)
  }
}
