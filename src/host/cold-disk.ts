/** A read slower than this may have come from the disk (see slowRead). */
const COLD_READ_MS = 2
/**
 * After a cold read, this many reads go through the asynchronous path before the synchronous
 * one is tried again. Counted in reads, not time: a pause of 500 ms, set off by a
 * few files (or their inodes) missing from the page cache, sent thousands of files of a
 * 200,000-file pull down the asynchronous path (~50 µs of CPU a file against ~11) when the
 * rest of the tree was cached; on a really cold disk one read in COLD_FILES + 1 still blocks.
 */
const COLD_FILES = 64
/** Device reads are sampled every this many synchronous reads (getrusage costs ~2-5 µs). */
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

/**
 * Whether file reads may run on the event loop: from the page cache a synchronous read costs a
 * fraction of one through libuv's pool, but a read that waits for the disk stalls every peer.
 * Shared by whole small files (small-files.ts) and big files' read windows (piece-reader.ts):
 * each synchronous read is timed (`started`, `finished`); after a cold one the caller is told
 * to use the asynchronous path for the next COLD_FILES reads.
 */
export class ColdDisk {
  /** Reads still to send down the asynchronous path after a cold read. */
  private coldLeft = 0
  /** Blocks this process had read from devices at the last sample, and the one before. */
  private deviceBlocks = process.resourceUsage().fsRead
  private deviceBlocksBefore = this.deviceBlocks
  private sinceSample = 0

  /** True while files should not be read on the event loop (the disk is cold). */
  get cold(): boolean {
    return this.coldLeft > 0
  }

  /** `cold`, and if so one read more sent down the asynchronous path. */
  takeCold(): boolean {
    if (this.coldLeft === 0) return false
    this.coldLeft--
    return true
  }

  /** Call before a synchronous read; returns its start time for `finished`. */
  started(): number {
    if (++this.sinceSample >= SAMPLE_EVERY) this.sample()
    return performance.now()
  }

  finished(started: number): void {
    if (performance.now() - started > COLD_READ_MS) this.slowRead()
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
}
