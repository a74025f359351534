import { lstatSync } from 'node:fs'
import { join } from 'node:path'
import { lineStarts, readListRuns, type ListReader, type StartsHolder } from '../generation/delta-apply.js'
import { contentPath, contentPathString, contentTable, tableCosts, tableEntries, type ContentTable } from '../manifest/content-table.js'
import { hashFileSync, type FileDigest } from '../manifest/hash-file.js'
import { lowerBound, pathKeyAt, type Lines } from '../manifest/manifest-lines.js'
import { rebuildShards, type ShardOut, type SpliceScratch } from '../manifest/shard-rebuild.js'
import { ShardStartsStream } from '../torrent/shards.js'
import { oldKey, oldSide, type Before } from './old-side.js'

/**
 * The client's shard splice in windows (docs/SCALE.md, "Update memory"): no table over every
 * file of the repository. A first pass over the new list, run by run, places the shard
 * boundaries of both generations (the previous content files follow from the new list and
 * DEST's lines at the paths the deltas name: old-side.ts) and notes the path each shard starts
 * at. Where a new shard and a previous one start at the same path, neither side's shards cross
 * that path: the list is cut there into windows, and a second pass hands each window's lines
 * alone to rebuildShards (gendsync's splice, unchanged), with its shards' boundaries from the
 * first pass. At 1M files a window is one or a few shards (~16,000 files each) where the whole
 * splice held ~100 bytes a file for the whole repository.
 */
export interface WindowedInput {
  /** The new list (read twice). */
  list: () => ListReader
  /** DEST's previous lines at the paths the deltas name, in path order. */
  changed: Before[]
  pieceLength: number
  save: string
  shardsDir: string
  name: string
  trackers: string[]
  /** The shards the record names (how many the new list must give). */
  named: number
  /** The previous index torrent's shards, in order. */
  oldShards: string[]
  onShard: (shard: ShardOut, s: number) => void
  /** Filled in: how many windows the list was cut into (tests). */
  stats?: { windows: number }
}

/** One side's shard boundaries as placed in the first pass, and the path each starts at. */
interface Side {
  stream: ShardStartsStream
  keys: Buffer[]
  starts: number[]
}

/** Where a window starts: the new shard s and the previous shard t that start at the same path (none: the first). */
interface Bound {
  s: number
  t: number
  key?: Buffer
}

export function windowedSplice(input: WindowedInput): ShardOut[] | string {
  const { next, old } = boundaries(input)
  if (next.starts.length !== input.named) return `${next.starts.length} shards here, ${input.named} in the record`
  if (old.starts.length !== input.oldShards.length) return 'the previous shards do not match data.dsync'
  const bounds = windowsOf(next, old)
  if (input.stats) input.stats.windows = bounds.length
  const out: ShardOut[] = []
  const acc = new WindowLines()
  // The splice's encoding and read buffers, reused from window to window (shard-rebuild.ts).
  const scratch: SpliceScratch = { reads: [] }
  let w = 0
  let j = 0
  let failed: string | undefined
  const close = () => {
    if (failed) return
    const hi = bounds[w + 1]?.key
    const from = j
    while (j < input.changed.length && (hi === undefined || Buffer.compare(input.changed[j].key, hi) < 0)) j++
    const got = spliceWindow(input, acc.lines(), input.changed.slice(from, j), { next, old, from: bounds[w], to: bounds[w + 1], scratch })
    if (typeof got === 'string') failed = got
    else out.push(...got)
    acc.clear()
    w++
  }
  readListRuns(input.list(), {
    header: () => {},
    run: lines => {
      for (let i = 0; i < lines.count && !failed;) {
        const hi = bounds[w + 1]?.key
        const end = hi === undefined ? lines.count : i + lowerBound({ buf: lines.buf, starts: lines.starts.subarray(i), count: lines.count - i }, hi)
        acc.add(lines.buf, lines.starts[i], lines.starts[end])
        i = end
        if (i < lines.count) close()
      }
    },
  })
  close()
  if (failed) return failed
  return w === bounds.length ? out : 'data.dsync changed during the splice'
}

/** First pass: both generations' shard starts, and each start's path. */
function boundaries(input: WindowedInput): { next: Side; old: Side } {
  const side = (): Side => ({ stream: new ShardStartsStream(), keys: [], starts: [] })
  const next = side()
  const old = side()
  const P = input.pieceLength
  let j = 0
  const run = (lines: Lines, final = false) => {
    if (lines.count === 0 && !final) return
    const ct = contentTable(lines)
    const costs = tableCosts(ct, P)
    // DEST's lines up to this run's last path; those after the last run with the empty one at the end.
    const last = lines.count > 0 ? pathKeyAt(lines, lines.count - 1) : undefined
    const from = j
    while (j < input.changed.length && (last === undefined || Buffer.compare(input.changed[j].key, last) <= 0)) j++
    const part = input.changed.slice(from, j)
    const o = oldSide(ct, costs, part, P)
    for (let c = 0; c < ct.count; c++) if (next.stream.add(costs, c)) next.keys.push(Buffer.from(contentPath(ct, c)))
    for (let k = 0; k < o.old.count; k++) if (old.stream.add(o.costs!, k)) old.keys.push(Buffer.from(oldKey(o, ct, part, k)))
  }
  readListRuns(input.list(), { header: () => {}, run: lines => run(lines) })
  run({ buf: Buffer.alloc(0), starts: new Uint32Array(1), count: 0 }, true)
  next.starts = next.stream.finish()
  old.starts = old.stream.finish()
  return { next, old }
}

/** The windows: cut where a new shard and a previous one start at the same path. */
function windowsOf(next: Side, old: Side): Bound[] {
  const bounds: Bound[] = [{ s: 0, t: 0 }]
  let t = 1
  for (let s = 1; s < next.starts.length; s++) {
    while (t < old.starts.length && Buffer.compare(old.keys[t], next.keys[s]) < 0) t++
    if (t < old.starts.length && old.keys[t].equals(next.keys[s])) bounds.push({ s, t: t++, key: next.keys[s] })
  }
  return bounds
}

/** One window's shards: its lines, DEST's lines in its range of paths, and its shards' starts from the first pass. */
function spliceWindow(input: WindowedInput, lines: Lines, changed: Before[], at: { next: Side; old: Side; from: Bound; to?: Bound; scratch: SpliceScratch }): ShardOut[] | string {
  const P = input.pieceLength
  const ct = contentTable(lines)
  // The boundaries are the first pass's: entry bytes are all this pass needs of each file.
  const side = oldSide(ct, { entry: tableEntries(ct) }, changed, P)
  const range = (s: Side, a: number, b: number) => {
    const base = s.starts[a]
    const end = b < s.starts.length ? s.starts[b] : s.stream.count
    return { starts: s.starts.slice(a, b).map(x => x - base), count: end - base }
  }
  const sEnd = at.to?.s ?? at.next.starts.length
  const tEnd = at.to?.t ?? at.old.starts.length
  const next = range(at.next, at.from.s, sEnd)
  const old = range(at.old, at.from.t, tEnd)
  if (next.count !== ct.count || old.count !== side.old.count) return 'data.dsync changed during the splice'
  return rebuildShards({
    save: input.save, shardsDir: input.shardsDir, name: input.name, trackers: input.trackers, pieceLength: P,
    next: ct, starts: next.starts, origin: side.origin, old: side.old, oldStarts: old.starts, oldEntry: side.oldEntry,
    oldShards: input.oldShards.slice(at.from.t, tEnd), digests: readNow(input.save, ct, side.origin, P),
    onShard: (shard, s) => input.onShard(shard, at.from.s + s), scratch: at.scratch,
  })
}

/** Digests of the window's files no previous one has (same path and SHA-256): hashed from DEST, which the apply just verified. */
function readNow(save: string, ct: ContentTable, origin: Int32Array, P: number): Map<string, FileDigest> {
  const digests = new Map<string, FileDigest>()
  for (let c = 0; c < ct.count; c++) {
    if (origin[c] >= 0) continue
    const path = contentPathString(ct, c)
    const abs = join(save, path)
    const st = lstatSync(abs)
    digests.set(path, hashFileSync(abs, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino }, P, true))
  }
  return digests
}

/** A window's lines, copied out of the runs into one buffer reused from window to window. */
class WindowLines {
  private buf = Buffer.allocUnsafe(4 << 20)
  private length = 0
  private readonly holder: StartsHolder = { starts: new Uint32Array(1 << 14) }

  add(from: Buffer, start: number, end: number): void {
    if (this.length + (end - start) > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + (end - start)))
      this.buf.copy(grown, 0, 0, this.length)
      this.buf = grown
    }
    this.length += from.copy(this.buf, this.length, start, end)
  }

  lines(): Lines {
    return lineStarts(this.buf.subarray(0, this.length), this.holder)
  }

  clear(): void {
    this.length = 0
  }
}
