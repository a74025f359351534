import type { ReadBuffers } from './read-buffers.js'

/**
 * Bytes of a big file read at once, for the blocks that follow. A client asks for a piece's
 * blocks back to back and takes pieces in runs (up to 1 MiB per peer per top-up), so one
 * 256 KiB read answers the next 15 blocks from memory, without a promise, a trip through
 * libuv's thread pool (two futex wake-ups) or a buffer per 16 KiB block.
 */
export const WINDOW_BYTES = 256 * 1024
/** Windows kept at most, all files together. */
const KEEP_BYTES = 8 << 20
/**
 * A window is trusted this long after its read, as an open handle is by the fd cache and a
 * small file's kept copy (RECHECK_MS, KEEP_MS): a file rewritten in place (rsync --inplace)
 * is noticed within the same time.
 */
const KEEP_MS = 250

interface Window {
  /** The bytes once read; until then the read every request of the window waits for. */
  data: Buffer | undefined
  loading: Promise<Buffer>
  at: number
  length: number
  /** Requests that joined while it was being read: each gets a reference when it arrives. */
  waiters: number
}

/** Where a request falls: the window's key, its start in the file and its length. */
export interface WindowSpan {
  key: string
  start: number
  length: number
}

/**
 * Recently read windows of big files, least recently used dropped first. The caller reads a
 * window (through the fd cache, with its checks) and every request inside it shares that read.
 */
export class ReadWindows {
  private readonly windows = new Map<string, Window>()
  private bytes = 0

  /**
   * @param buffers the windows' buffers come from there (the caller's `read`); a kept window
   *   holds one reference, each request given its bytes one more (read-buffers.ts).
   */
  constructor(private readonly buffers: ReadBuffers) {}

  /**
   * The window holding [fileOffset, fileOffset + length) of a file of `fileLength` bytes, or
   * undefined when the range crosses a window's end.
   */
  span(path: string, fileLength: number, fileOffset: number, length: number): WindowSpan | undefined {
    const start = fileOffset - (fileOffset % WINDOW_BYTES)
    const windowLength = Math.min(WINDOW_BYTES, fileLength - start)
    if (fileOffset + length > start + windowLength) return undefined
    return { key: `${start}:${path}`, start, length: windowLength }
  }

  /** The window's bytes when they are in memory and fresh (with a reference for the caller), else undefined. */
  now(w: WindowSpan): Buffer | undefined {
    const kept = this.windows.get(w.key)
    if (!kept?.data || Date.now() - kept.at > KEEP_MS) return undefined
    this.buffers.ref(kept.data)
    return kept.data
  }

  /**
   * The window's bytes at once: kept and fresh, or else read now by `read` (synchronous; it
   * returns a buffer holding one reference, the kept copy's, or undefined when it cannot read
   * now). Undefined while the window is being read asynchronously: the caller joins that read
   * through `get`. With a reference for the caller, as `now`.
   */
  readNow(w: WindowSpan, read: () => Buffer | undefined): Buffer | undefined {
    const kept = this.windows.get(w.key)
    if (kept && !kept.data) return undefined
    if (kept && Date.now() - kept.at <= KEEP_MS) {
      this.buffers.ref(kept.data!)
      return kept.data
    }
    this.drop(w.key)
    const data = read()
    if (!data) return undefined
    this.buffers.ref(data)
    this.windows.set(w.key, { data, loading: Promise.resolve(data), at: Date.now(), length: w.length, waiters: 0 })
    this.bytes += w.length
    this.trim()
    return data
  }

  /**
   * The window's bytes: kept, being read, or read now by `read` (a failed read is not kept);
   * with a reference for the caller, taken before anything else can drop the window.
   */
  get(w: WindowSpan, read: () => Promise<Buffer>): Promise<Buffer> {
    const kept = this.windows.get(w.key)
    if (kept && (!kept.data || Date.now() - kept.at <= KEEP_MS)) {
      if (kept.data) this.buffers.ref(kept.data)
      else kept.waiters++
      return kept.loading
    }
    this.drop(w.key)
    const entry: Window = { data: undefined, loading: read(), at: Date.now(), length: w.length, waiters: 1 }
    this.windows.set(w.key, entry)
    this.bytes += w.length
    this.trim()
    // Runs before the waiters' own reactions (attached later): their references are counted
    // before any of them can release one.
    entry.loading.then(data => {
      this.buffers.ref(data, entry.waiters)
      if (this.windows.get(w.key) === entry) {
        entry.data = data
        entry.at = Date.now()
      } else {
        this.buffers.release(data) // dropped while it was read: the kept reference goes
      }
    }, () => {
      if (this.windows.get(w.key) === entry) this.drop(w.key)
    })
    return entry.loading
  }

  /** Forgets every window of `path` (the file was found changed). */
  forget(path: string): void {
    for (const key of [...this.windows.keys()]) if (key.slice(key.indexOf(':') + 1) === path) this.drop(key)
  }

  private drop(key: string): void {
    const w = this.windows.get(key)
    if (!w) return
    this.windows.delete(key)
    this.bytes -= w.length
    if (w.data) this.buffers.release(w.data)
  }

  private trim(): void {
    for (const key of this.windows.keys()) {
      if (this.bytes <= KEEP_BYTES) break
      this.drop(key)
    }
  }
}
