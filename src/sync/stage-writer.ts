import { Worker } from 'node:worker_threads'
import { fsError } from '../errors.js'
import { STAGE_DIRS, stageShard } from './part-writer.js'
import { HEX_CHARS, ITEM_AHEAD, ITEM_FIELDS, type PackedItems } from './stage-items.js'
import { traceMark } from '../swarm/trace.js'
import { pagedBuffer, releaseBuffer } from '../util/release-memory.js'

export type StageRequest =
  | { type: 'batch'; id: number; buffer: ArrayBuffer; items: PackedItems }
  | { type: 'close' }

export interface StageReply {
  type: 'done' | 'closed'
  id?: number
  buffer?: ArrayBuffer
  verified?: string[]
  mismatched?: string[]
  error?: { path: string; code?: string; message: string }
}

/**
 * Bytes gathered before a batch leaves (while its worker is behind: see QUEUED_BATCHES);
 * bigger pieces get a buffer of their own size. Each batch is a message each way and a
 * wake-up of a thread; on a loaded 2-core machine a postMessage that wakes a thread cost the
 * event loop 0.7 ms (the worker preempts it), and at 1 MiB the batches of a 1 GiB pull of
 * 20,000 files were 1,180 messages.
 */
const BATCH_BYTES = 4 << 20
/**
 * Bytes with the worker before the caller is told to stop fetching (`onBusy(true)`), and
 * below which it may go on (`high`, `low`). Counted in bytes, not batches: on a busy machine an
 * event-loop turn may carry one piece, and eight such batches paused a 4-host pull of one 2 GiB
 * file. A batch counts for its buffer's size, not only its pieces' bytes: thousands of batches
 * of a few small files each would otherwise be 1 MiB of memory apiece under a 32 MiB count.
 * `spare`: empty batch buffers kept for reuse per lane, so a pull that keeps the worker busy
 * allocates none (with 8 kept, a fresh zeroed 1 MiB buffer per batch was 1.4% of the client's
 * profile on one 2 GiB file, and most of its GC). 16 MiB / 4 MiB, not 32 / 8 (session 25, m25):
 * every buffer a lagging lane fills is fresh memory first touched by the copy into it, and a
 * page fault costs ~16 µs on this machine (~4 ms per 4 MiB batch); a `mirror` bootstrap made
 * 17 buffers at 32 MiB and 11 at 16, with the downloader paused as rarely (client CPU -8%).
 */
const ROOMY = { high: 16 << 20, low: 4 << 20, spare: 10 }
/**
 * The same for a pull of a very long list (`tightStageBuffers`), where the list and the plan
 * already weigh ~230 MB: a lane that lagged kept 10 spares (40 MiB) for the rest of its writer,
 * 74-104 MiB of ArrayBuffers at the 1M bootstrap's peak (docs/SCALE.md, "the stage lanes' buffers
 * bounded"). Here 3 spares: what a worker that keeps up cycles through (QUEUED_BATCHES with it,
 * one back while the next fills). Not for every pull: with 3 a `mirror` bootstrap (1 GiB) took
 * 1.24x the client CPU in one loaded run (fresh 4 MiB buffers after each burst).
 */
const TIGHT = { high: 16 << 20, low: 4 << 20, spare: 3 }
let bounds = ROOMY
/** Pulls of very long lists running in this process (the runner may run several pulls at once). */
let tightPulls = 0

/**
 * A pull of a very long list starts (true: tight bounds while any such pull runs) or ends
 * (false, once for each true). Counted, so one pull's end does not loosen another's bounds.
 */
export function tightStageBuffers(tight: boolean): void {
  tightPulls = Math.max(0, tightPulls + (tight ? 1 : -1))
  bounds = tightPulls > 0 ? TIGHT : ROOMY
}

/**
 * Empty batch buffers a closed writer leaves for the next one, and how long they wait for it. A
 * sharded pull (docs/SCALE.md) runs one transfer, so one writer, per shard: each allocated its
 * buffers afresh (4 MiB each), which was 0.34 s of the 200,000-file bootstrap's event loop
 * (`newBatch`, 17 shards, quiet run after session 6). Kept only briefly: the next shard's
 * transfer starts at once, and nothing should hold them through the apply.
 */
const HANDED_ON = 2 * STAGE_DIRS + 2
const HAND_ON_MS = 1000
const handedOn: ArrayBuffer[] = []
let handOnTimer: NodeJS.Timeout | undefined

const openLanes = new Set<StageLane>()
/**
 * Batch-buffer bytes the stage writers hold (`held`: with a worker, filling, spare and handed on;
 * `spare`: empty ones kept, at most HANDED_ON batches), now and at most since
 * `resetStageBufferPeak` (sampled where they grow). For tests and memory traces.
 */
export const stageBuffers = { held: 0, peak: 0, spare: 0, sparePeak: 0 }
/** Diagnostic (the trace's 'stage-buffers' mark): batch buffers made afresh, and let go beyond the spares. */
const bufferCounts = { made: 0, dropped: 0 }
export function resetStageBufferPeak(): void {
  stageBuffers.peak = stageBuffers.held
  stageBuffers.sparePeak = stageBuffers.spare
}
function noteStageBuffers(): void {
  let held = handedOn.length * BATCH_BYTES
  let spare = held
  for (const lane of openLanes) {
    held += lane.bytesHeld()
    spare += lane.spareBytes()
  }
  stageBuffers.held = held
  stageBuffers.spare = spare
  if (held > stageBuffers.peak) stageBuffers.peak = held
  if (spare > stageBuffers.sparePeak) stageBuffers.sparePeak = spare
}

/** Batch buffers are paged (release-memory.ts): one let go leaves the process's memory at once. */
function madeBuffer(bytes: number): ArrayBuffer {
  bufferCounts.made++
  return pagedBuffer(bytes)
}

function dropBuffer(buffer: ArrayBuffer): void {
  bufferCounts.dropped++
  releaseBuffer(buffer)
}

/**
 * The end of a pull's transfers (every shard's): the empty batches handed on and the parked
 * workers go now, not after HAND_ON_MS. A pull's apply follows its transfer at once and keeps
 * the event loop (the timers could not fire), and at 1M files the apply was the bootstrap's
 * peak with these still held (docs/SCALE.md, "Bootstrap memory: the transfer's buffers
 * released before the apply"). Resolves once the parked workers have stopped.
 */
export async function releaseStageBuffers(): Promise<void> {
  dropHandedOn()
  await stopParked()
}

/** The batches handed on go now: their HAND_ON_MS is over, or the pull's transfers are. */
function dropHandedOn(): void {
  clearTimeout(handOnTimer)
  for (const b of handedOn.splice(0)) dropBuffer(b)
  noteStageBuffers()
}

/** Batches with a worker (one being written, one waiting) before the next is held back to grow. */
const QUEUED_BATCHES = 2
/**
 * A batch smaller than this waits up to HOLD_MS for more pieces even when its worker is idle:
 * sent every turn, batches of 200,000 small files held a few files each, and postMessage (a
 * wake-up of the worker each) was 3% of the event loop (200 ms at 20,000 files) after the
 * QUEUED_BATCHES change. At 64 KiB / 2 ms a `mirror` pull (1 GiB) still sent 790-1,060 batches
 * (each ~0.8 ms of the event loop in the quiet run's profile); at 1 MiB / 8 ms, 530-910 (counting
 * preload, alternating pulls, load 12-14), and postMessage was still the event loop's largest
 * item in a loaded `mirror` profile (session 9: 1.99 s of 12.6 s, a bit over half of it the stage
 * writer's; waking a worker on a busy 2-core machine hands it the core). Hence a full batch, or
 * 24 ms: a 100 MB/s lane fills its 4 MiB in ~40 ms, a lane of small files sends ~40 a second.
 */
const MIN_SEND_BYTES = BATCH_BYTES
const HOLD_MS = 24

export interface StageWriterEvents {
  /** This many more piece bytes are on disk (written, not yet fsynced). */
  onWritten: (bytes: number) => void
  /** A finished file matched its SHA-256 and is staged under its name. */
  onVerified: (hex: string) => void
  /** A finished file did not match its SHA-256; nothing of it is kept. */
  onMismatch: (hex: string) => void
  /** Writing failed (disk full, permissions): the transfer cannot go on. */
  onError: (err: Error) => void
  /** True when the worker is behind and no more pieces should be fetched; false when it caught up. */
  onBusy: (busy: boolean) => void
}

/** One stage worker per staging folder (part-writer.ts says why). */
const STAGE_WORKERS = STAGE_DIRS

/**
 * Stage workers a closed writer leaves for the next one (same staging folder), for HAND_ON_MS.
 * A sharded bootstrap runs one transfer per shard, and each started two threads afresh: 31
 * threads in a 200,000-file pull, each compiling Node's internal modules again (~40 ms of CPU
 * apiece, ~1.3 s of the pull's ~13.7 s in its profile, session 10). A parked worker is unref'd:
 * it keeps no process alive.
 */
const parked: { worker: Worker; dir: string; gone: () => void }[] = []
let parkTimer: NodeJS.Timeout | undefined

function takeParked(dir: string): Worker | undefined {
  for (;;) {
    const i = parked.findIndex(p => p.dir === dir)
    if (i < 0) return undefined
    const worker = unwatch(parked.splice(i, 1)[0])
    // One that stopped before its 'exit' event came (threadId -1 from then on) is not handed out.
    if (worker.threadId < 0) continue
    worker.ref()
    return worker
  }
}

/** Keeps `worker` (idle, its part files closed) for the next writer of `dir`; stops it after HAND_ON_MS unused. */
function park(worker: Worker, dir: string): void {
  if (parked.length >= STAGE_WORKERS) return void worker.terminate()
  // A parked worker that fails (it should not) is only dropped: no writer is waiting on it.
  const gone = () => {
    const i = parked.findIndex(p => p.worker === worker)
    if (i >= 0) parked.splice(i, 1)
  }
  worker.on('exit', gone)
  worker.on('error', gone)
  worker.unref()
  parked.push({ worker, dir, gone })
  clearTimeout(parkTimer)
  parkTimer = setTimeout(() => void stopParked(), HAND_ON_MS)
  parkTimer.unref()
}

/** The parked workers stop now: their HAND_ON_MS is over, or the pull's transfers are. */
async function stopParked(): Promise<void> {
  clearTimeout(parkTimer)
  await Promise.all(parked.splice(0).map(p => unwatch(p).terminate()))
}

/** A parked worker taken out of `parked`: its 'exit' and 'error' no longer drop it from there. */
function unwatch(p: { worker: Worker; gone: () => void }): Worker {
  p.worker.off('exit', p.gone)
  p.worker.off('error', p.gone)
  return p.worker
}

/**
 * The event loop's side of the stage workers: copies each verified piece into a batch buffer
 * (one copy, no allocation per piece: buffers travel to a worker and back), sends the batch at
 * the end of the event-loop turn, and reports each finished file. The workers write, hash
 * (SHA-256 as bytes arrive) and rename, so both cores work during a pull. A file always goes
 * to the same worker, which keeps its staging folder (`stagedPath`): creating files is most
 * of a small file's cost, and the kernel creates in one folder at a time.
 */
export class StageWriter {
  private readonly lanes: StageLane[]
  private busy = false
  private failed = false
  private flushScheduled = false

  constructor(dir: string, private readonly events: StageWriterEvents) {
    const laneEvents: LaneEvents = {
      ...events,
      onError: err => this.fail(err),
      onLoad: () => this.checkLoad(),
    }
    this.lanes = Array.from({ length: STAGE_WORKERS }, () => new StageLane(dir, laneEvents))
  }

  /**
   * Queues a verified piece (`flags`: ITEM_LAST, ITEM_CHECKED); `mode` (unless -1) and `mtime` are given to the file
   * once it is finished, and `ahead` (with ITEM_AHEAD) is where it then goes under `<staging>/folders/`.
   * `data` may be reused by the caller once this returns.
   */
  write(hex: string, offset: number, data: Uint8Array, size: number, flags: number, mode = -1, mtime = 0, ahead = ''): void {
    if (this.failed) return
    this.lanes[stageShard(hex)].add(hex, offset, data, size, flags, mode, mtime, ahead)
    if (!this.flushScheduled) {
      this.flushScheduled = true
      setImmediate(() => {
        this.flushScheduled = false
        for (const lane of this.lanes) lane.flushIfRoom()
      })
    }
  }

  /** Resolves once every piece queued so far is written and its file, if finished, checked. */
  async drain(): Promise<void> {
    await Promise.all(this.lanes.map(lane => lane.drain()))
  }

  /** Closes the workers' open part files and stops them; pieces not yet sent are dropped. */
  async close(): Promise<void> {
    traceMark('stage-buffers', { ...bufferCounts, peak: stageBuffers.peak })
    await Promise.all(this.lanes.map(lane => lane.close(this.failed)))
  }

  /** Busy while any worker holds too much; idle again once every one is low. */
  private checkLoad(): void {
    if (!this.busy && this.lanes.some(l => l.bytesInFlight >= bounds.high)) {
      this.busy = true
      this.events.onBusy(true)
    } else if (this.busy && this.lanes.every(l => l.bytesInFlight <= bounds.low)) {
      this.busy = false
      this.events.onBusy(false)
    }
  }

  private fail(err: Error): void {
    if (this.failed) return
    this.failed = true
    this.events.onError(err)
    for (const lane of this.lanes) lane.release()
  }
}

interface LaneEvents extends StageWriterEvents {
  /** Bytes in flight changed. */
  onLoad: () => void
}

/** One stage worker and its batches. */
class StageLane {
  private readonly worker: Worker
  private readonly free: ArrayBuffer[] = []
  private current: { buffer: ArrayBuffer; bytes: Uint8Array; used: number; hexes: string[]; ahead: string; at: number; timer?: NodeJS.Timeout } | undefined
  /**
   * The current batch's ITEM_FIELDS numbers per piece, `filled` of them, copied out when it is
   * sent. Reused from batch to batch: an array of numbers per batch, grown push by push and its
   * mtimes boxed, was ~200 B of heap to allocate and collect per file of a small bootstrap (a
   * heap sampling profile of the 200,000-file bootstrap, h12c22).
   */
  private numbers = new Float64Array(ITEM_FIELDS * 1024)
  private filled = 0
  /** Piece bytes of each batch with the worker, by batch id. */
  private readonly sent = new Map<number, number>()
  private nextId = 0
  private inFlight = 0
  /** Buffer bytes with the worker (a batch counts for its whole buffer). */
  bytesInFlight = 0
  private idle: (() => void)[] = []

  private readonly listeners = {
    message: (reply: StageReply) => this.onReply(reply),
    error: (err: Error) => this.events.onError(err),
    exit: (code: number) => { if (code !== 0) this.events.onError(new Error(`stage worker exited with code ${code}`)) },
  }

  constructor(private readonly dir: string, private readonly events: LaneEvents) {
    this.worker = takeParked(dir) ?? new Worker(new URL('./stage-worker.js', import.meta.url), { workerData: { dir } })
    openLanes.add(this)
    this.worker.on('message', this.listeners.message)
    this.worker.on('error', this.listeners.error)
    this.worker.on('exit', this.listeners.exit)
  }

  add(hex: string, offset: number, data: Uint8Array, size: number, flags: number, mode: number, mtime: number, ahead: string): void {
    let cur = this.current
    if (cur && cur.used + data.length > cur.bytes.length) {
      this.flush()
      cur = undefined
    }
    if (!cur) {
      cur = this.current = this.newBatch(data.length)
      noteStageBuffers()
    }
    if (hex.length !== HEX_CHARS) throw new Error(`not a SHA-256 hex name: ${hex}`)
    cur.bytes.set(data, cur.used)
    cur.hexes.push(hex)
    let n = this.numbers
    const at = this.filled
    if (at + ITEM_FIELDS > n.length) {
      const bigger = new Float64Array(n.length * 2)
      bigger.set(n)
      this.numbers = n = bigger
    }
    n[at] = offset
    n[at + 1] = cur.used
    n[at + 2] = data.length
    n[at + 3] = size
    n[at + 4] = flags
    n[at + 5] = mode
    n[at + 6] = mtime
    this.filled = at + ITEM_FIELDS
    if (flags & ITEM_AHEAD) cur.ahead += `${ahead}\0`
    cur.used += data.length
  }

  /**
   * Sends the batch at the end of an event-loop turn only while the worker has fewer than
   * QUEUED_BATCHES: beyond that the batch grows until a reply comes back (or it is full). A
   * batch per turn of a few small files each made postMessage 3.6% of the event loop's time
   * and as much again of the workers' on a 20,000-file pull.
   */
  flushIfRoom(): void {
    const cur = this.current
    if (!cur || this.inFlight >= QUEUED_BATCHES) return
    // A small batch waits a moment for more pieces (a timer sends it, if nothing else does).
    if (cur.used >= MIN_SEND_BYTES || performance.now() - cur.at >= HOLD_MS) return this.flush()
    if (!cur.timer) {
      // When it fires the batch has waited its HOLD_MS: no second look at the clock (libuv's
      // whole milliseconds can fire it at 23.x by performance.now(), and a batch left with its
      // timer spent waited for the next piece on any lane).
      cur.timer = setTimeout(() => {
        cur.timer = undefined
        if (this.current === cur && this.inFlight < QUEUED_BATCHES) this.flush()
      }, HOLD_MS)
    }
  }

  async drain(): Promise<void> {
    this.flush()
    if (this.inFlight === 0) return
    await new Promise<void>(resolve => this.idle.push(resolve))
  }

  /** Wakes drain() callers (the writer failed: nothing more will be reported). */
  release(): void {
    for (const resolve of this.idle.splice(0)) resolve()
  }

  /**
   * Closes the worker's part files; a worker that answered, of a writer that did not fail and
   * with nothing of its own in flight, is left to the next writer (park), any other stopped.
   */
  async close(failed: boolean): Promise<void> {
    clearTimeout(this.current?.timer)
    if (this.current) dropBuffer(this.current.buffer)
    this.current = undefined
    let reusable = false
    if (this.worker.threadId >= 0 && !failed) {
      reusable = await new Promise<boolean>(resolve => {
        const done = (ok: boolean) => {
          this.worker.off('message', onClosed)
          this.worker.off('exit', onExit)
          resolve(ok)
        }
        const onClosed = (reply: StageReply) => { if (reply.type === 'closed') done(true) }
        const onExit = () => done(false)
        this.worker.on('message', onClosed)
        this.worker.on('exit', onExit)
        this.worker.postMessage({ type: 'close' } satisfies StageRequest)
      })
    }
    this.worker.off('message', this.listeners.message)
    this.worker.off('error', this.listeners.error)
    this.worker.off('exit', this.listeners.exit)
    if (reusable && this.inFlight === 0 && this.worker.threadId >= 0) park(this.worker, this.dir)
    else {
      // The lane's own listeners are off (its 'exit' would fail the writer): an 'error' while
      // the thread stops must still have a listener, or it would end the process.
      this.worker.on('error', () => {})
      await this.worker.terminate()
    }
    openLanes.delete(this)
    this.handOn()
    noteStageBuffers()
  }

  /** Batch-buffer bytes of this lane: with the worker, filling, and spare. */
  bytesHeld(): number {
    return this.bytesInFlight + (this.current?.buffer.byteLength ?? 0) + this.spareBytes()
  }

  spareBytes(): number {
    return this.free.length * BATCH_BYTES
  }

  /** Leaves this lane's empty buffers to the next writer, for a moment (HAND_ON_MS). */
  private handOn(): void {
    for (const b of this.free.splice(0)) {
      if (handedOn.length < HANDED_ON) handedOn.push(b)
      else dropBuffer(b)
    }
    clearTimeout(handOnTimer)
    if (handedOn.length === 0) return
    handOnTimer = setTimeout(dropHandedOn, HAND_ON_MS)
    handOnTimer.unref()
  }

  private newBatch(minBytes: number) {
    const buffer = minBytes <= BATCH_BYTES ? (this.free.pop() ?? handedOn.pop() ?? madeBuffer(BATCH_BYTES)) : madeBuffer(minBytes)
    this.filled = 0
    return { buffer, bytes: new Uint8Array(buffer), used: 0, hexes: [] as string[], ahead: '', at: performance.now(), timer: undefined as NodeJS.Timeout | undefined }
  }

  flush(): void {
    const cur = this.current
    if (!cur || cur.hexes.length === 0) return
    this.current = undefined
    clearTimeout(cur.timer)
    this.inFlight++
    this.bytesInFlight += cur.buffer.byteLength
    this.sent.set(this.nextId, cur.used)
    const items: PackedItems = { hexes: cur.hexes.join(''), numbers: this.numbers.slice(0, this.filled), ahead: cur.ahead }
    this.filled = 0
    this.worker.postMessage({ type: 'batch', id: this.nextId++, buffer: cur.buffer, items } satisfies StageRequest, [cur.buffer])
    this.events.onLoad()
  }

  private onReply(reply: StageReply): void {
    if (reply.type !== 'done') return
    this.inFlight--
    const back = reply.buffer!
    const size = back.byteLength
    if (size === BATCH_BYTES && this.free.length < bounds.spare) this.free.push(back)
    else dropBuffer(back)
    if (reply.error) {
      const { path, code, message } = reply.error
      return this.events.onError(fsError(Object.assign(new Error(message), { code }), path, 'write'))
    }
    const bytes = this.sent.get(reply.id!)!
    this.sent.delete(reply.id!)
    this.bytesInFlight -= size
    noteStageBuffers()
    this.events.onWritten(bytes)
    for (const hex of reply.verified!) this.events.onVerified(hex)
    for (const hex of reply.mismatched!) this.events.onMismatch(hex)
    this.events.onLoad()
    this.flushIfRoom()
    if (this.inFlight === 0) this.release()
  }
}
