import { randomFill } from 'node:crypto'

/** Warmed in pieces of this size, each a job of its own on libuv's threads (the batch's writes queue there too). */
const CHUNK = 4 << 20

/**
 * Memory whose pages are touched on libuv's threads before the main thread writes into it: the
 * new data.dsync and the new shard torrents of a hinted gendsync (~60 MB at 200k files), which
 * were fresh buffers whose first write cost the main thread a page fault per 4 KiB. On this VM a
 * 30 MB copy into a fresh buffer took 120-330 ms of CPU and into a touched one 2-3 ms; the pages
 * must be touched from user space (a kernel read of a file or of /dev/zero into them did not make
 * the main thread's later write cheap; crypto.randomFill, a user-space fill on libuv's threads,
 * does, and its own generation costs ~7 ms per 30 MB). A hinted run's main thread is busy alone
 * on a 2-core host, so the faults move to the core it leaves idle; the CPU spent is the same.
 *
 * Nothing is handed out before its pages are touched: `take` serves only the warmed prefix, and
 * a caller that gets undefined allocates as before. Bytes handed out hold random data until
 * written: callers take exactly what they write (or, for typed arrays, read no element before
 * writing it: the hinted run's new content table and costs).
 */
export class WarmMemory {
  private readonly buf: Buffer
  private at = 0
  /** Bytes from the start whose every chunk is touched. */
  private warm = 0
  private readonly done: boolean[]
  /** Settled once no fill is pending any more (each chunk touched, or its fill failed: never handed out then). */
  readonly settled: Promise<void>
  private readonly fills: Promise<void>[] = []

  constructor(bytes: number) {
    this.buf = Buffer.allocUnsafe(Math.max(0, Math.floor(bytes)))
    this.done = new Array<boolean>(Math.ceil(this.buf.length / CHUNK)).fill(false)
    const fills = this.fills
    for (let i = 0; i < this.done.length; i++) {
      const from = i * CHUNK
      fills.push(new Promise<void>(resolve => randomFill(this.buf, from, Math.min(CHUNK, this.buf.length - from), err => {
        if (!err) {
          this.done[i] = true
          while (this.warm < this.buf.length && this.done[this.warm / CHUNK]) this.warm = Math.min(this.buf.length, this.warm + CHUNK)
        }
        resolve()
      })))
    }
    this.settled = Promise.all(fills).then(() => undefined)
  }

  /**
   * Settles once the next `bytes` are warm or their fills failed; at once when fewer are left (take
   * could not give them). A caller about to write that much waits for the fills rather than fault
   * fresh pages itself while libuv's threads are touching these (that would be the work twice, on
   * a loaded host the wait).
   */
  ready(bytes: number): Promise<void> {
    if (this.at + bytes > this.buf.length) return Promise.resolve()
    return Promise.all(this.fills.slice(0, Math.ceil((this.at + bytes) / CHUNK))).then(() => undefined)
  }

  /** `bytes` of touched memory (a view; never handed out twice), or undefined when not that much is warm yet. */
  take(bytes: number): Buffer | undefined {
    if (!(bytes > 0) || this.at + bytes > this.warm) return undefined
    const out = this.buf.subarray(this.at, this.at + bytes)
    this.at += bytes
    return out
  }

  /** A typed array of `length` elements in touched memory (8-byte aligned), or a new one (zeroed) when not that much is warm yet. */
  array<T extends Float64Array | Uint32Array | Int32Array>(Kind: TypedArrayKind<T>, length: number): T {
    const skip = (8 - ((this.buf.byteOffset + this.at) % 8)) % 8
    const bytes = length * Kind.BYTES_PER_ELEMENT
    if (length > 0 && this.at + skip + bytes <= this.warm) {
      this.at += skip
      const out = new Kind(this.buf.buffer, this.buf.byteOffset + this.at, length)
      this.at += bytes
      return out
    }
    return new Kind(length)
  }
}

/** Float64Array, Uint32Array or Int32Array, as a constructor. */
export interface TypedArrayKind<T> {
  new (length: number): T
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): T
  readonly BYTES_PER_ELEMENT: number
}

/** `new Kind(length)`, in `memory` when given: for arrays whose every element read is written first. */
export function newArray<T extends Float64Array | Uint32Array | Int32Array>(Kind: TypedArrayKind<T>, length: number, memory?: WarmMemory): T {
  return memory ? memory.array(Kind, length) : new Kind(length)
}
