import { Worker } from 'node:worker_threads'

/** A piece's check, from the worker: true (matches), false (does not), undefined (lost: the worker failed). */
export type Verdict = (ok: boolean | undefined, data: Buffer) => void

export interface VerifyRequest {
  kind: 'pieces'
  id: number
  /** One per piece, each the whole ArrayBuffer of a piece buffer (transferred, sent back). */
  buffers: ArrayBuffer[]
  /** Per piece: bytes of data at the start of its buffer, then pad zeros hashed after them. */
  sizes: Float64Array
  /** Per piece, the torrent's 20-byte SHA-1, end to end. */
  expected: Uint8Array
}

export interface VerifyReply {
  kind: 'pieces'
  id: number
  buffers: ArrayBuffer[]
  /** 1 where the piece matched. */
  ok: Uint8Array
}

/** Whole files (one piece each) checked against their SHA-256, packed end to end in one buffer. */
export interface WholeRequest {
  kind: 'whole'
  id: number
  buffer: ArrayBuffer
  /** Per file: start in `buffer`, length. */
  spans: Float64Array
  /** Per file, its SHA-256 in hex (64 characters), end to end. */
  hexes: string
}

export interface WholeReply {
  kind: 'whole'
  id: number
  buffer: ArrayBuffer
  /** 1 where the file matched. */
  ok: Uint8Array
}

/** The worker stops after this long without a piece to check (a pull of a few files pays no thread). */
const IDLE_MS = 2000
/**
 * Pieces sent to the worker together: a message costs the event loop ~10-30 µs (a piece's
 * SHA-1 is 20-50 µs), so one message per turn of a few pieces each cost more than the
 * hashing it saved (7.6% of the loop against ~7% on a 20,000-file pull). A batch leaves
 * when this full (in pieces or bytes), or BATCH_WAIT_MS after its first piece. At 16 pieces a
 * 1 GiB pull of 20,000 files sent 1,020 messages, 1.7 ms of the event loop each on a loaded
 * 2-core machine (waking the verifier preempts the event loop; measured with a counting
 * postMessage wrapper). Waiting 16 ms instead of 4 (a 1 GiB pull takes seconds; a piece's
 * verdict only counts it, its requests already went on): 309-361 verifier messages per `mirror`
 * pull against 487-1,149 (counting preload, one pull each, load 10-14), each ~0.8 ms of the event
 * loop even in the quiet run (postMessage 1.0 s for ~1,300 messages).
 */
const BATCH_PIECES = 64
const BATCH_BYTES = 4 << 20
const BATCH_WAIT_MS = 16
/**
 * Whole files (one piece each: most files of a mirror of small files) are copied end to end into
 * one buffer of this size per batch, not one buffer each: a batch of 64 buffers was one message
 * per 64 files, ~3,000 messages for 200,000 files. A file bigger than this gets a buffer of its own.
 */
const WHOLE_BATCH_BYTES = 2 << 20
const WHOLE_BATCH_FILES = 4096
/**
 * A batch of whole files leaves this long after its first (or when full): at 16 ms a pull of
 * 20,000 small files a second sent ~60 batches a second, each a wake-up of the verifier. A
 * verdict only counts the piece (its requests already went on), so waiting costs little.
 */
const WHOLE_BATCH_WAIT_MS = 32
/**
 * Whole files smaller than this are checked on the event loop all the same: their SHA-256 costs
 * about what sending them does (copy, bookkeeping, a view per file for the verdict). In a loaded
 * 200,000-file profile (files of 100-3,000 B) the event loop spent ~7 µs a file sending them
 * against ~4.5 µs hashing them itself (session 9, h12c9), SHA-256 running at ~1.5 GB/s here.
 */
export const WHOLE_OFF_THREAD_BYTES = 8 << 10
/** Empty whole-file batch buffers kept for the next batches. */
const WHOLE_SPARE = 4

/**
 * Checks pieces' SHA-1 on a worker thread. The hash of every multi-block piece ran on the
 * event loop: 8.8% of a 20,000-file pull's main thread and 10.8% of one 2 GiB file's, while
 * that thread was 80-100% busy (it parses the wire, copies blocks, feeds the stage workers)
 * and the stage workers idled. Pieces leave in batches; their buffers travel to the worker
 * and back (no copy). The caller learns the verdict a few milliseconds later, and counts a
 * piece only then.
 */
export class PieceVerifier {
  private worker: Worker | undefined
  private batch: { buffers: ArrayBuffer[]; sizes: number[]; expected: Uint8Array[]; verdicts: Verdict[]; bytes: number; timer: NodeJS.Timeout } | undefined
  private readonly waiting = new Map<number, { verdicts: Verdict[] }>()
  private whole: WholeBatch | undefined
  private readonly waitingWhole = new Map<number, { spans: Float64Array; verdicts: Verdict[] }>()
  private readonly wholeSpare: ArrayBuffer[] = []
  private nextId = 0
  private idleTimer: NodeJS.Timeout | undefined
  private closed = false

  /**
   * Queues a check of `data` (its first `length` bytes, then `pad` zeros) against `expected`.
   * `data` must be a whole ArrayBuffer (offset 0, nothing else in it): it is detached until
   * the verdict, which hands it back.
   */
  verify(data: Buffer, length: number, pad: number, expected: Uint8Array, verdict: Verdict): void {
    if (data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength) throw new Error('a piece buffer must own its ArrayBuffer')
    if (!this.batch) this.batch = { buffers: [], sizes: [], expected: [], verdicts: [], bytes: 0, timer: setTimeout(() => this.flush(), BATCH_WAIT_MS) }
    this.batch.buffers.push(data.buffer as ArrayBuffer)
    this.batch.sizes.push(length, pad)
    this.batch.expected.push(expected)
    this.batch.verdicts.push(verdict)
    this.batch.bytes += length
    if (this.batch.verdicts.length >= BATCH_PIECES || this.batch.bytes >= BATCH_BYTES) this.flush()
  }

  /**
   * Queues a check of a whole file's bytes against its SHA-256 (`sha256`, hex). `data` is copied
   * (it may be reused once this returns); the verdict hands a view of the copy, valid only during
   * the call.
   */
  checkWhole(data: Uint8Array, sha256: string, verdict: Verdict): void {
    let b = this.whole
    if (b && (b.used + data.length > b.bytes.length || b.verdicts.length >= WHOLE_BATCH_FILES)) {
      this.flushWhole()
      b = undefined
    }
    if (!b) {
      const buffer = data.length <= WHOLE_BATCH_BYTES ? (this.wholeSpare.pop() ?? new ArrayBuffer(WHOLE_BATCH_BYTES)) : new ArrayBuffer(data.length)
      b = this.whole = { buffer, bytes: new Uint8Array(buffer), used: 0, spans: [], hexes: [], verdicts: [], timer: setTimeout(() => this.flushWhole(), WHOLE_BATCH_WAIT_MS) }
    }
    b.bytes.set(data, b.used)
    b.spans.push(b.used, data.length)
    b.hexes.push(sha256)
    b.verdicts.push(verdict)
    b.used += data.length
  }

  /** Stops the worker; checks not answered yet are reported lost. */
  close(): void {
    this.closed = true
    this.stop()
  }

  private flushWhole(): void {
    const b = this.whole
    this.whole = undefined
    if (!b) return
    clearTimeout(b.timer)
    if (this.closed) return b.verdicts.forEach(v => v(undefined, Buffer.alloc(0)))
    clearTimeout(this.idleTimer)
    const worker = this.start()
    const id = this.nextId++
    const spans = Float64Array.from(b.spans)
    this.waitingWhole.set(id, { spans, verdicts: b.verdicts })
    worker.postMessage({ kind: 'whole', id, buffer: b.buffer, spans, hexes: b.hexes.join('') } satisfies WholeRequest, [b.buffer])
  }

  private flush(): void {
    const b = this.batch
    this.batch = undefined
    if (!b) return
    clearTimeout(b.timer)
    if (this.closed) return b.verdicts.forEach((v, i) => v(undefined, Buffer.from(b.buffers[i])))
    clearTimeout(this.idleTimer)
    const worker = this.start()
    const id = this.nextId++
    this.waiting.set(id, { verdicts: b.verdicts })
    const expected = new Uint8Array(20 * b.expected.length)
    b.expected.forEach((e, i) => expected.set(e, i * 20))
    const msg: VerifyRequest = { kind: 'pieces', id, buffers: b.buffers, sizes: Float64Array.from(b.sizes), expected }
    worker.postMessage(msg, b.buffers)
  }

  private start(): Worker {
    if (this.worker) return this.worker
    const worker = new Worker(new URL('./verify-worker.js', import.meta.url))
    worker.unref()
    worker.on('message', (reply: VerifyReply | WholeReply) => (reply.kind === 'whole' ? this.onWholeReply(reply) : this.onReply(reply)))
    // A worker that fails (it should not) loses the pieces it held: they are fetched again.
    const lost = () => { if (this.worker === worker) this.stop() }
    worker.on('error', lost)
    worker.on('exit', lost)
    this.worker = worker
    return worker
  }

  private onReply(reply: VerifyReply): void {
    const w = this.waiting.get(reply.id)
    if (!w) return
    this.waiting.delete(reply.id)
    w.verdicts.forEach((v, i) => v(reply.ok[i] === 1, Buffer.from(reply.buffers[i])))
    this.idleSoon()
  }

  private onWholeReply(reply: WholeReply): void {
    const w = this.waitingWhole.get(reply.id)
    if (!w) return
    this.waitingWhole.delete(reply.id)
    w.verdicts.forEach((v, i) => v(reply.ok[i] === 1, Buffer.from(reply.buffer, w.spans[2 * i], w.spans[2 * i + 1])))
    if (reply.buffer.byteLength === WHOLE_BATCH_BYTES && this.wholeSpare.length < WHOLE_SPARE) this.wholeSpare.push(reply.buffer)
    this.idleSoon()
  }

  /** Nothing left to check: the worker stops unless more comes within IDLE_MS. */
  private idleSoon(): void {
    if (this.waiting.size === 0 && this.waitingWhole.size === 0 && !this.batch && !this.whole) {
      this.idleTimer = setTimeout(() => this.stop(), IDLE_MS)
      this.idleTimer.unref()
    }
  }

  private stop(): void {
    clearTimeout(this.idleTimer)
    const worker = this.worker
    this.worker = undefined
    const lost = [...this.waiting.values(), ...this.waitingWhole.values()]
    this.waiting.clear()
    this.waitingWhole.clear()
    void worker?.terminate()
    for (const w of lost) for (const v of w.verdicts) v(undefined, Buffer.alloc(0))
  }
}

interface WholeBatch {
  buffer: ArrayBuffer
  bytes: Uint8Array
  used: number
  spans: number[]
  hexes: string[]
  verdicts: Verdict[]
  timer: NodeJS.Timeout
}
