/**
 * Buffers for file reads (whole small files, read windows of big ones), used again once every
 * block cut from them has left through a socket.
 *
 * Why: a host serving `mirror` (1 GiB) allocated a fresh buffer per file and per 256 KiB window,
 * ~340 MB per host per pull. Each is memory outside V8's heap that V8 counts; every 64 MB of it
 * starts a full collection (13 a pull on an 8 MB heap) and its buffers' release: 28% of a host's
 * CPU in a perf profile was the garbage collector's (docs/ARCHITECTURE.md, session 24, h12h24).
 *
 * A buffer is counted: one reference for the cache that keeps it (kept small files, read
 * windows), one for each block view handed out until the session releases it (copied into its
 * send buffer, or written: the socket's write callback). It returns to the free list at zero.
 * A reference never released (a block answered through the Wire, whose stream keeps it) only
 * means the buffer is not used again; the garbage collector frees it as before. Releasing too
 * early would send another file's bytes, so a buffer is only counted from `take` on, and
 * `release` of a buffer not taken here does nothing.
 */

/** Reads up to this size use Node's shared pool (Buffer.allocUnsafe); not counted here. */
const MIN_BYTES = 4096 + 1
/** The largest buffer handed out: a read window, the largest small file (256 KiB). */
export const MAX_POOLED = 256 * 1024
/** Free buffers kept at most, all sizes together. */
const FREE_MAX_BYTES = 16 << 20

interface Slab {
  /** The whole buffer (a power of two bytes); views of it are handed out. */
  buf: Buffer
  refs: number
  /** Index of its size class. */
  cls: number
}

/**
 * One set of free lists for the whole process, shared by every generation's reader: free
 * buffers are bounded once per host, not once per served torrent (a 1M-file repository is many
 * shard torrents).
 */
export class ReadBuffers {
  /** Free buffers by size class: 8 KiB, 16 KiB ... 256 KiB. */
  private readonly free: Buffer[][] = []
  private freeBytes = 0
  /** Counted buffers by their memory; weak: a buffer never released is collected as any other. */
  private readonly slabs = new WeakMap<ArrayBuffer, Slab>()
  /** Buffers made, and taken again from the free list (tests, status). */
  made = 0
  reused = 0

  /** A buffer of `size` bytes holding one reference (the taker's). Not counted outside 4 KiB-256 KiB. */
  take(size: number): Buffer {
    if (size < MIN_BYTES || size > MAX_POOLED) return Buffer.allocUnsafe(size)
    const cls = Math.max(0, Math.ceil(Math.log2(size)) - 13)
    const list = this.free[cls]
    let buf = list?.pop()
    if (buf) {
      this.freeBytes -= buf.length
      this.reused++
    } else {
      buf = Buffer.allocUnsafeSlow(8192 << cls)
      this.made++
    }
    this.slabs.set(buf.buffer as ArrayBuffer, { buf, refs: 1, cls })
    return buf.subarray(0, size)
  }

  /** One more reference to the buffer `view` is part of (nothing if it was not taken here). */
  ref(view: Uint8Array, count = 1): void {
    const s = this.slabs.get(view.buffer as ArrayBuffer)
    if (s && s.refs > 0) s.refs += count
  }

  /** One reference fewer; the last one puts the buffer on the free list. */
  release(view: Uint8Array): void {
    const s = this.slabs.get(view.buffer as ArrayBuffer)
    if (!s || s.refs <= 0) return
    if (--s.refs > 0) return
    this.slabs.delete(view.buffer as ArrayBuffer)
    if (this.freeBytes + s.buf.length > FREE_MAX_BYTES) return
    ;(this.free[s.cls] ??= []).push(s.buf)
    this.freeBytes += s.buf.length
  }
}

/** The host's read buffers (see ReadBuffers). */
export const hostReadBuffers = new ReadBuffers()
