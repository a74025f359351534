import { getHeapStatistics, setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/** Below this many bytes dropped, V8's own collections are soon enough. */
export const RELEASE_MIN_BYTES = 32 << 20

/** Metadata bytes received between two scavenges (collectYoung). */
const COLLECT_EVERY = 16 << 20

let gc: ((options?: { type: 'minor' | 'major' }) => void) | undefined

/**
 * Buffers the program has just dropped (data.dsync's bytes and the shard torrents once they
 * are on disk: ~300 MB at 1M files) are only given back when V8 next runs a full collection;
 * the plan and the first transfer buffers were built beside them, and that was the client's
 * peak at 1M files (docs/SCALE.md, "Bootstrap memory: a collection where ~300 MB were dropped").
 * One full collection at that point; V8 frees the backing stores on a background thread.
 * `gc` is exposed the documented way (the flag, then a new context that has the function).
 */
export function collectNow(): void {
  exposedGc()()
}

/**
 * A scavenge: the young generation only (milliseconds, whatever the old one holds). While
 * metadata streams in at loopback speed, each message split between two socket reads is a
 * fresh buffer, dead at once; V8 let ~64 MiB of them (external memory) pile up before it
 * collected, in glibc's main heap, which keeps those pages resident for the rest of the run
 * (h11b9's trace of a 1M bootstrap: that heap at 130 MiB 1.2 s in, and 128-146 MiB to the end).
 */
function collectYoung(): void {
  exposedGc()({ type: 'minor' })
}

/** Counts a fetch's metadata bytes as they arrive and scavenges (collectYoung) every COLLECT_EVERY of them. */
export function youngCollector(): (received: number) => void {
  let since = 0
  return received => {
    if ((since += received) < COLLECT_EVERY) return
    since = 0
    collectYoung()
  }
}

function exposedGc(): NonNullable<typeof gc> {
  if (!gc) {
    setFlagsFromString('--expose-gc')
    gc = runInNewContext('gc') as NonNullable<typeof gc>
  }
  return gc
}

let bounded = false

/**
 * V8 lets the old generation grow by a factor of its live size between full collections,
 * chosen from its own speed figures: with a bootstrap's long list live (200-300 MB at 1M
 * files) that is 100+ MB of dead transfer and plan objects before the next collection, and
 * the client's RSS follows heapTotal. A fixed factor of 1 + percent/100 bounds that garbage
 * (a heap of 220 MB live with promoted churn: peak heapTotal 785 MB by default, 281 at 10%,
 * 313 at 25%; docs/SCALE.md, "Bootstrap memory"). Read by V8 at each collection, so it holds
 * from the next one; `unboundHeapGrowth` gives V8 its own choice back.
 */
export function boundHeapGrowth(percent: number): void {
  setFlagsFromString(`--heap-growing-percent=${percent}`)
  bounded = true
}

/**
 * boundHeapGrowth(percent), or more where the live heap is small: a growth of at least
 * `floorBytes` between full collections. Call it right after a full collection (collectNow),
 * when the heap's used size is its live size. V8 starts marking once the old generation is
 * within about a young generation's size of its limit, so a small bound on a small heap (20% of
 * the 20-30 MB live through a 200k-file transfer) left only a few MB of promoted per-piece
 * objects between full collections: ~45-60 of them in a 200k bootstrap, 1.2-1.6 s of the main
 * thread. On a heap of floorBytes * 100 / percent or more, `percent` alone holds, unchanged.
 */
export function boundHeapGrowthAtLeast(percent: number, floorBytes: number): void {
  const live = Math.max(1, getHeapStatistics().used_heap_size)
  boundHeapGrowth(Math.max(percent, Math.ceil(floorBytes * 100 / live)))
}

export function unboundHeapGrowth(): void {
  if (!bounded) return
  setFlagsFromString('--heap-growing-percent=0')
  bounded = false
}

/** ES2024's resizable ArrayBuffer (Node 20 has it; the project's lib is ES2022). */
type Resizable = ArrayBuffer & { resize(bytes: number): void; readonly resizable: boolean }
const ResizableBuffer = ArrayBuffer as unknown as new (bytes: number, options: { maxByteLength: number }) => Resizable

/**
 * A buffer of `bytes` in pages of its own, which `releaseBuffer` gives back to the system at
 * once. A plain ArrayBuffer is glibc's malloc: once one of 4 MiB was freed, glibc's dynamic
 * mmap threshold put the next ones in its heap (brk), and a freed one there stays resident
 * behind anything allocated after it. The stage lanes' batches (up to 23 of 4 MiB at once at 1M
 * files) then stayed in the client's RSS through the apply, the bootstrap's peak (30 of 4 MiB
 * dropped and collected in a process: RSS 170 -> 166 MiB; resizable: 173 -> 54). A resizable
 * ArrayBuffer is V8's own mapping (reserved, committed as it grows), outside malloc's heap; it
 * goes to a worker and back like any other, and views of it read and write as usual.
 */
export function pagedBuffer(bytes: number): ArrayBuffer {
  return new ResizableBuffer(bytes, { maxByteLength: bytes })
}

/**
 * Gives a pagedBuffer's pages back now (not at V8's next full collection). The buffer is empty
 * from here (views of it have no bytes left): the caller drops it. Any other buffer is left to
 * the collector.
 */
export function releaseBuffer(buffer: ArrayBuffer): void {
  const b = buffer as Resizable
  if (b.resizable && b.byteLength > 0) b.resize(0)
}
