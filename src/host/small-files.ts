import { closeSync, fstatSync, readSync } from 'node:fs'
import { mismatch, openRepoFileSync, StaleFileError, type Expected } from './repo-file.js'
import type { ReadBuffers } from './read-buffers.js'

/** Files up to this size are read whole, in one go, when their first block is asked for. */
export const WHOLE_FILE_MAX = 256 * 1024
/** Whole files kept for their next blocks (the client asks for a piece's blocks back to back). */
const KEEP_BYTES = 16 << 20
/** A kept copy is trusted this long, as an open handle is by the fd cache (rsync --inplace). */
const KEEP_MS = 250
/** A read slower than this may have come from the disk (see slowRead). */
const COLD_READ_MS = 2
/**
 * After a cold read, this many small files go through the asynchronous path before the
 * synchronous one is tried again. Counted in files, not time: a pause of 500 ms, set off by a
 * few files (or their inodes) missing from the page cache, sent thousands of files of a
 * 200,000-file pull down the asynchronous path (~50 µs of CPU a file against ~11) when the
 * rest of the tree was cached; on a really cold disk one read in COLD_FILES + 1 still blocks.
 */
const COLD_FILES = 64
/** Device reads are sampled every this many whole-file reads (getrusage costs ~2-5 µs). */
const SAMPLE_EVERY = 32
/**
 * Device blocks (512 B) read within the last 32-64 reads that make a slow read "cold": eight
 * small files' pages. Any block was enough before, and on the bench's tree right after a run (page cache
 * warmed, other sessions' big trees beside it) one host's pull set the cold path off 136-152
 * times, sending 8,500-9,600 of its ~65,000 files down the asynchronous path; 135 of one host's
 * 141 times after 8-40 blocks (a page or an inode table block read back: one to five of them),
 * the other 6 after 64-13,176. A cold tree reads at least a page (8 blocks) per file, 256 or
 * more in a window.
 */
const COLD_BLOCKS = 64

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
 * long (the disk, not the cache) would stall every peer, so after one the caller is told to
 * use the asynchronous path for the next COLD_FILES files.
 */
export class SmallFileReader {
  private readonly kept = new Map<string, Kept>()
  private keptBytes = 0
  /** Small files still to send down the asynchronous path after a cold read. */
  private coldLeft = 0
  /** Blocks this process had read from devices at the last sample, and the one before. */
  private deviceBlocks = process.resourceUsage().fsRead
  private deviceBlocksBefore = this.deviceBlocks
  private sinceSample = 0
  /** Files read whole since start. */
  filesRead = 0

  /** @param buffers where file buffers come from and go back to (read-buffers.ts). */
  constructor(private readonly buffers: ReadBuffers) {}

  /** True while small files should not be read on the event loop (the disk is cold). */
  get cold(): boolean {
    return this.coldLeft > 0
  }

  /** `cold`, and if so one file more sent down the asynchronous path. */
  takeCold(): boolean {
    if (this.coldLeft === 0) return false
    this.coldLeft--
    return true
  }

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
    if (++this.sinceSample >= SAMPLE_EVERY) this.sample()
    const started = performance.now()
    const data = readChecked(path, want, this.buffers)
    this.filesRead++
    if (performance.now() - started > COLD_READ_MS) this.slowRead()
    if (!wholeRequested) {
      // The reference `take` gave is the kept copy's; the caller gets one more.
      this.keep(path, data)
      this.buffers.ref(data)
    }
    return data
  }

  /**
   * Slow alone is no proof: on a loaded machine the thread is often just descheduled (under
   * load 20 a host profile showed as much time in the asynchronous opens as in the synchronous
   * reads: timing alone sent small files down the slow path for seconds at a time). Blocks read
   * from a device lately (getrusage's inblock, COLD_BLOCKS of them) say the page cache is missing. "Lately" is the
   * last one or two samples (32-64 reads), not since the previous slow read: that could be
   * minutes, and any device read of the process in between (an inode, another thread's file)
   * counted; one slow read then made every small file of a 200,000-file pull take the
   * asynchronous path (seen in the host's profile: promise opens, no synchronous ones).
   */
  private slowRead(): void {
    const blocks = process.resourceUsage().fsRead
    if (blocks - this.deviceBlocksBefore >= COLD_BLOCKS) this.coldLeft = COLD_FILES
    this.deviceBlocksBefore = this.deviceBlocks = blocks
    this.sinceSample = 0
  }

  private sample(): void {
    this.deviceBlocksBefore = this.deviceBlocks
    this.deviceBlocks = process.resourceUsage().fsRead
    this.sinceSample = 0
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

/** Opened as the fd cache opens (no symbolic link followed, inside the repository), then checked. */
function readChecked(path: string, want: Expected, buffers: ReadBuffers): Buffer {
  const fd = openRepoFileSync(path, want.root)
  const size = want.size
  try {
    const problem = mismatch(fstatSync(fd), want)
    if (problem) throw new StaleFileError(path, problem)
    const data = buffers.take(size)
    let done = 0
    try {
      while (done < size) {
        const n = readSync(fd, data, done, size - done, done)
        if (n === 0) throw new StaleFileError(path, 'shorter than data.dsync says')
        done += n
      }
    } catch (err) {
      buffers.release(data)
      throw err
    }
    return data
  } finally {
    closeSync(fd)
  }
}
