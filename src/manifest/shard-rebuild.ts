import { createHash, hash as oneShot } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { torrentHead, wrapInfo, type BuiltTorrent } from '../torrent/build.js'
import { InfoWriter, padEntryByteLength } from '../torrent/encode-info.js'
import { readFileInto } from '../util/read-file.js'
import { contentPath, contentPathString, type ContentTable } from './content-table.js'
import { pieceHashes, pieceHashesReusing } from '../torrent/piece-hashes.js'
import type { FileDigest } from './hash-file.js'
import { lastPieceHashes } from './old-pieces.js'
import { newArray, type WarmMemory } from './warm-memory.js'

/** A shard of the new generation: built now (torrent set), or the previous file kept as it is. */
export interface ShardOut extends BuiltTorrent {
  /** False: the previous generation's file, byte for byte (not written again). */
  built: boolean
  count: number
  bytes: number
  /** Its piece hashes as a file of the index torrent (with oldIndex only): padded, and the unpadded last one. */
  indexPieces?: { pieces: Buffer; tail?: Buffer }
}

/** Previous shard files held at once while splicing. */
const KEEP_OLD_SHARDS = 3

export interface ShardRebuildInput {
  save: string
  shardsDir: string
  name: string
  trackers: string[]
  pieceLength: number
  next: ContentTable
  starts: number[]
  /** For each new content file: its index in the previous content table, or -1 when it was read now. */
  origin: Int32Array
  /**
   * For each new content file kept (origin >= 0), when known: the end of the new files kept in
   * a row with it, their previous files consecutive too (hinted.ts, nextContentTable). Runs are
   * then copied without asking each file whether the run goes on (shardFiles, shardPieces:
   * two loops over every row of a 200k-file list otherwise).
   */
  keptUntil?: Int32Array
  /** The previous content files: how many, and their lengths (a ContentTable, or derived: src/sync/old-side.ts). */
  old: { count: number; length: Float64Array }
  oldStarts: number[]
  /** Each previous content file's entry bytes in a files list, pad entry not counted (tableCosts). */
  oldEntry: Float64Array
  /**
   * Each new content file's entry bytes likewise (tableCosts of `next`), when known: a new shard's
   * size is then known before it is written, and it is written into a previous shard file's
   * buffer done with when one is big enough (without scratch: see OldShardPieces.spare).
   */
  nextEntry?: Float64Array
  /** The previous shards' infohashes, in order (the previous index torrent's list). */
  oldShards: string[]
  /**
   * Each shard as it is made (in order); the list returned then holds no torrent bytes, so a
   * caller writing them out holds one shard at a time (a client at 1M files: ~150 MB of them).
   */
  onShard?: (shard: ShardOut, s: number) => void
  /** Digests of the files read now, by path. */
  digests: Map<string, FileDigest>
  /**
   * Buffers reused from shard to shard and, passed again, from call to call (the client's
   * windows: shard-windows.ts). Only with onShard: the previous shards' bytes are read into
   * them, so a kept shard's torrent is valid only during its onShard call.
   */
  scratch?: SpliceScratch
  /**
   * The previous index torrent, when it is trusted (the one the magnet link names: its infohash
   * covers its piece hashes): its piece hashes, and each previous shard file's first piece (-1:
   * not on a piece boundary) and length in it. Each shard out then carries its own piece hashes
   * as a file of the new index (`indexPieces`), a 16 KiB window byte for byte the previous shard
   * file's at the same offset keeping that file's hash (the previous file read is checked
   * against its name first).
   */
  oldIndex?: { pieces: Buffer; firstPiece: number[]; length: number[] }
  /** Previous shard files read already, by path (util/prefetch.ts); each is taken out when used. */
  prefetched?: Map<string, Buffer>
  /**
   * Memory touched already (warm-memory.ts): the previous files' offsets in their shards
   * (OldShardPieces), and a new shard no previous shard's buffer can take (without scratch only).
   */
  memory?: WarmMemory
}

/**
 * A splice's transient buffers, reused: the files list being encoded, the piece hashes, the
 * previous shard files read. Allocated afresh per shard (and per window at 1M files: 77), each
 * a few MB of ArrayBuffers that only a garbage collection gives back, they piled up to 57 MiB
 * between collections (docs/SCALE.md, "Update memory at 1M").
 */
export interface SpliceScratch {
  files?: Buffer
  pieces?: Buffer
  /** Buffers of previous shard files no longer held, to read the next ones into. */
  reads: Buffer[]
}

/**
 * The shard torrents of a generation made with a change hint. A shard whose files are exactly
 * a previous shard's, none read again, is that shard: its file is kept (same infohash) and
 * nothing of it is re-encoded. Any other shard is spliced: runs of unchanged files copy their
 * entries (and pad entries) and piece hashes from the previous shard's .torrent as bytes, at
 * offsets computed from data.dsync (no decoding); files read now, and files whose pad entry
 * comes or goes because they now end a shard or no longer do, are encoded. The bytes are those
 * a full run writes (test/gendsync-hint.test.ts). A reason instead when the previous files do
 * not fit.
 */
export function rebuildShards(input: ShardRebuildInput): ShardOut[] | string {
  if (input.oldStarts.length !== input.oldShards.length) return 'the previous shards do not match data.dsync'
  const oldPieces = new OldShardPieces(input)
  try {
    return spliceShards(input, oldPieces)
  } finally {
    oldPieces.release()
  }
}

function spliceShards(input: ShardRebuildInput, oldPieces: OldShardPieces): ShardOut[] | string {
  const P = input.pieceLength
  const torrentStart = torrentHead(input.trackers)
  const head = Buffer.concat([torrentStart, Buffer.from('d5:filesl')])
  const out: ShardOut[] = []
  // The piece hashes of the shard being spliced, copied into its files list by finish(): one
  // buffer serves every shard (a fresh one each, ~300 KB at 200k files, faulted its pages in).
  const piecesScratch: { pieces?: Buffer } = input.scratch ?? {}
  for (let s = 0; s < input.starts.length; s++) {
    const a = input.starts[s]
    const b = s + 1 < input.starts.length ? input.starts[s + 1] : input.next.count
    // Kept files keep their order: no shard from here on reads a previous shard before the one
    // holding the first of them at or after a (its buffer can take a new shard: spare).
    if (!input.scratch) {
      const done = oldPieces.doneBefore(firstKept(input, a))
      if (done) return done
    }
    oldPieces.beginShard()
    let bytes = 0
    for (let c = a; c < b; c++) bytes += input.next.length[c]
    const kept = keptShard(input, a, b)
    if (kept !== undefined) {
      const torrent = oldPieces.torrent(kept)
      if (typeof torrent === 'string') return torrent
      // Same files, same trackers: the previous file is this shard's, byte for byte.
      if (torrent.subarray(0, head.length).equals(head)) {
        // Handed over as this shard's bytes: never written over (OldShardPieces.spare).
        oldPieces.keep(kept)
        const checked = oldPieces.checkUsed()
        if (typeof checked === 'string') return checked
        const indexPieces = indexPiecesOf(input, torrent, oldPieces.checkedTorrent(kept), kept)
        out.push(handOver(input, { torrent, infoHash: input.oldShards[kept], built: false, count: b - a, bytes, indexPieces }, s))
        continue
      }
    }
    // A same-size rewrite leaves the previous shard's bytes but for some piece hashes: patched where it was read.
    const patched = input.scratch ? undefined : patchInPlace(input, oldPieces, head, a, b)
    if (typeof patched === 'string') return patched
    if (patched) {
      out.push(handOver(input, { ...patched, built: true, count: b - a, bytes }, s))
      continue
    }
    const pieces = shardPieces(input, oldPieces, a, b, piecesScratch)
    if (typeof pieces === 'string') return pieces
    // Without scratch buffers (gendsync) the shard is written after the torrent's head, in its
    // final buffer; with them (the client) it is copied out so that buffer serves the next shard.
    const files = shardFiles(input, oldPieces, a, b, input.scratch ? undefined : { head: torrentStart, pieces: pieces.length })
    if (typeof files === 'string') return files
    const source = sourceShard(input, a, b)
    const torrent = input.scratch ? wrapInfo(files.finish(input.name, P, pieces), input.trackers) : files.torrentBytes(input.name, P, pieces)
    // What the shard left of the buffer it was written into can take a later one.
    if (!input.scratch) oldPieces.spareRest(files.buffer, torrent.torrent.length)
    const checked = oldPieces.checkUsed('info' in torrent ? { t: source, info: torrent.info } : undefined)
    if (typeof checked === 'string') return checked
    const infoHash = 'info' in torrent ? checked.infoHash! : torrent.infoHash
    const indexPieces = indexPiecesOf(input, torrent.torrent, oldPieces.checkedTorrent(source), source)
    out.push(handOver(input, { torrent: torrent.torrent, infoHash, built: true, count: b - a, bytes, indexPieces }, s))
    if (input.scratch) input.scratch.files = files.buffer
  }
  return out
}

const NO_BYTES = Buffer.alloc(0)

/**
 * A shard file's piece hashes in the new index (oldIndex given): the hashes of previous shard
 * `t`'s file (sourceShard) kept for every whole window equal to it at the same offset (a
 * same-size change leaves all but a few so), the rest hashed.
 */
function indexPiecesOf(input: ShardRebuildInput, torrent: Buffer, old: Buffer | undefined, t: number | undefined): ShardOut['indexPieces'] {
  const index = input.oldIndex
  if (!index) return undefined
  const P = input.pieceLength
  if (t === undefined || !old || old.length !== index.length[t] || index.firstPiece[t] < 0) return pieceHashes(torrent, P, true)
  const from = index.firstPiece[t] * 20
  return pieceHashesReusing(torrent, { data: old, pieces: index.pieces.subarray(from, from + Math.ceil(old.length / P) * 20) }, P, true)
}

function handOver(input: ShardRebuildInput, shard: ShardOut, s: number): ShardOut {
  if (!input.onShard) return shard
  input.onShard(shard, s)
  return { ...shard, torrent: NO_BYTES }
}

/**
 * New shard [a, b) when it is previous shard `t`'s files in the same places, some of them read
 * now at their previous length under their previous path (a same-size rewrite; gendsync only):
 * its bytes are the previous file's but for those files' piece hashes. The previous file is
 * checked against its name, then patched in the buffer it was read into, which becomes this
 * shard's (not copied into another: ~2 MB a shard at 200k files, most of a hinted run's
 * rebuilding), and the new infohash shares the SHA-1 of the bytes before the first patch.
 * Undefined when the shard is not such a one (then spliced as before).
 */
function patchInPlace(
  input: ShardRebuildInput, old: OldShardPieces, head: Buffer, a: number, b: number,
): { torrent: Buffer; infoHash: string; indexPieces?: ShardOut['indexPieces'] } | string | undefined {
  const t = sameLayout(input, a, b)
  if (t === undefined) return undefined
  const got = old.shard(t)
  if (typeof got === 'string') return got
  const { torrent } = got
  const P = input.pieceLength
  if (!torrent.subarray(0, head.length).equals(head) || !old.endsAsWritten(got, input.name)) return undefined
  // Where each file read now has its hashes in the previous file, and its new hashes (checked before any byte is written).
  const patches: { at: number; hashes: Buffer; tail?: Buffer }[] = []
  const first = input.oldStarts[t]
  for (let c = a; c < b; c++) {
    if (input.origin[c] >= 0) continue
    const length = input.next.length[c]
    const n = Math.ceil(length / P) * 20
    const ending = c === b - 1 && length % P !== 0
    const d = input.digests.get(contentPathString(input.next, c))
    if (!d || d.pieces.length !== n || (ending && !d.tail)) return `${contentPathString(input.next, c)} has no digest`
    patches.push({ at: old.piecesAt(got, first + (c - a)), hashes: d.pieces, tail: ending ? d.tail : undefined })
  }
  if (patches.length === 0) return undefined
  const infoFrom = got.list - 'd5:filesl'.length
  const infoTo = torrent.length - 1
  const from = patches[0].at
  const prefix = createHash('sha1').update(torrent.subarray(infoFrom, from))
  const bad = old.checkRest(t, got, prefix.copy(), from)
  if (bad) return bad
  // Handed over as this shard's bytes: never a spare, and no later shard reads previous shard t.
  old.keep(t)
  const dirty: number[] = []
  for (const p of patches) {
    p.hashes.copy(torrent, p.at)
    if (p.tail) p.tail.copy(torrent, p.at + p.hashes.length - 20)
    dirty.push(p.at, p.at + p.hashes.length)
  }
  const checked = old.checkUsed()
  if (typeof checked === 'string') return checked
  const infoHash = prefix.update(torrent.subarray(from, infoTo)).digest('hex')
  return { torrent, infoHash, indexPieces: patchedIndexPieces(input, torrent, t, dirty) }
}

/**
 * The previous shard whose files are new shard [a, b)'s in the same places, each kept or read
 * now with its previous length and path (so its entry bytes are the previous ones), if any.
 */
function sameLayout(input: ShardRebuildInput, a: number, b: number): number | undefined {
  const old = input.old as Partial<ContentTable> & ShardRebuildInput['old']
  if (!old.lines || !old.pathFrom || !old.pathTo) return undefined
  let c = a
  while (c < b && input.origin[c] < 0) c++
  if (c === b) return undefined
  const t = shardOf(input.oldStarts, input.origin[c])
  const first = input.oldStarts[t]
  const end = t + 1 < input.oldStarts.length ? input.oldStarts[t + 1] : old.count
  if (end - first !== b - a || input.origin[c] !== first + (c - a)) return undefined
  const next = input.next
  for (c = a; c < b; c++) {
    const k = first + (c - a)
    if (input.origin[c] === k) continue
    if (input.origin[c] >= 0 || next.length[c] !== old.length[k]) return undefined
    if (next.lines.buf.compare(old.lines.buf, old.pathFrom[k], old.pathTo[k], next.pathFrom[c], next.pathTo[c]) !== 0) return undefined
  }
  return t
}

/**
 * A patched shard file's piece hashes in the new index (oldIndex given): the previous index's for
 * every whole window no patch (`dirty`: from, to pairs) touches, the others and the last one hashed.
 */
function patchedIndexPieces(input: ShardRebuildInput, torrent: Buffer, t: number, dirty: number[]): ShardOut['indexPieces'] {
  const index = input.oldIndex
  if (!index) return undefined
  const P = input.pieceLength
  if (torrent.length !== index.length[t] || index.firstPiece[t] < 0) return pieceHashes(torrent, P, true)
  const full = Math.floor(torrent.length / P)
  const count = Math.ceil(torrent.length / P)
  const pieces = Buffer.allocUnsafe(count * 20)
  index.pieces.copy(pieces, 0, index.firstPiece[t] * 20, (index.firstPiece[t] + full) * 20)
  for (let i = 0; i < dirty.length; i += 2) {
    for (let w = Math.floor(dirty[i] / P); w < full && w * P < dirty[i + 1]; w++) {
      ;(oneShot('sha1', torrent.subarray(w * P, (w + 1) * P), 'buffer') as Buffer).copy(pieces, w * 20)
    }
  }
  if (full === count) return { pieces }
  const last = pieceHashes(torrent.subarray(full * P), P, true)
  last.pieces.copy(pieces, full * 20)
  return last.tail ? { pieces, tail: last.tail } : { pieces }
}

/** The previous shard holding the first file of [a, b) not read now (a mirror's first file, dists/…/Release, changes on every update). */
function sourceShard(input: ShardRebuildInput, a: number, b: number): number | undefined {
  for (let c = a; c < b; c++) if (input.origin[c] >= 0) return shardOf(input.oldStarts, input.origin[c])
  return undefined
}

/** The first new content file at or after `a` not read now: its index in the previous list, or -1. */
function firstKept(input: ShardRebuildInput, a: number): number {
  for (let c = a; c < input.next.count; c++) if (input.origin[c] >= 0) return input.origin[c]
  return -1
}

/** The previous shard whose range is exactly [a, b) with no file read again, if any. */
function keptShard(input: ShardRebuildInput, a: number, b: number): number | undefined {
  const first = input.origin[a]
  if (first < 0) return undefined
  const t = shardOf(input.oldStarts, first)
  const end = t + 1 < input.oldStarts.length ? input.oldStarts[t + 1] : input.old.count
  if (input.oldStarts[t] !== first || end - first !== b - a) return undefined
  for (let c = a; c < b; c++) if (input.origin[c] !== first + (c - a)) return undefined
  return t
}

/**
 * The files list of new shard [a, b): runs of previous entries copied, the rest encoded.
 * `whole`: the writer also holds the torrent's head and room for the pieces (InfoWriter.torrentBytes),
 * sized from the previous shards' mean entry so that it does not grow (a copy of it all) midway.
 */
function shardFiles(input: ShardRebuildInput, old: OldShardPieces, a: number, b: number, whole?: { head: Buffer; pieces: number }): InfoWriter | string {
  const P = input.pieceLength
  const padded = (length: number, last: boolean) => length % P !== 0 && !last
  const w = whole ? wholeWriter(input, old, a, b, whole) : new InfoWriter((b - a) * 96 + 1024, input.scratch?.files)
  for (let c = a; c < b;) {
    const k = input.origin[c]
    const length = input.next.length[c]
    if (k >= 0 && padded(length, c === b - 1) === padded(length, old.isLast(k))) {
      // Files kept in a row inside both shards go in at once; the loop asks the rest file by file.
      const skip = keptInside(input, old, c, b) - c
      c += skip
      let end = k + 1 + skip
      for (c++; c < b && input.origin[c] === end && !old.isLast(end - 1) && padded(input.next.length[c], c === b - 1) === padded(input.next.length[c], old.isLast(end)); c++) end++
      const run = old.entries(k, end)
      if (typeof run === 'string') return run
      w.raw(run.torrent, run.from, run.to)
      continue
    }
    w.entry(contentPath(input.next, c), length)
    if (padded(length, c === b - 1)) w.pad(P - (length % P))
    c++
  }
  return w
}

/**
 * The writer of new shard [a, b) with the torrent's head. With the new entries' sizes known
 * (nextEntry) it is sized by them (shardBytes, an upper bound) and written into a previous
 * shard's buffer done with when one is that big, else into warmed memory, else a new buffer.
 * (It was sized by the previous shards' mean entry plus 16 bytes each: a spare big enough for
 * the shard but not for that estimate, ~200 KB more, was taken and not used; 3 of the 9 spares
 * offered in a 100-upload run at 200k files.)
 */
function wholeWriter(input: ShardRebuildInput, old: OldShardPieces, a: number, b: number, whole: { head: Buffer; pieces: number }): InfoWriter {
  const exact = shardBytes(input, a, b, whole.pieces)
  if (!Number.isFinite(exact)) return new InfoWriter(Math.ceil((b - a) * (old.meanEntryBytes() + 16)) + whole.pieces + 1024, undefined, whole.head)
  const need = whole.head.length + exact
  return new InfoWriter(exact, old.spare(need) ?? input.memory?.take(need), whole.head)
}

/**
 * The bytes of new shard [a, b)'s info dict and the outer dict's end, at most (its files list
 * exactly, plus 1 KiB for the name and the fields around the pieces), or Infinity without
 * `nextEntry`.
 */
function shardBytes(input: ShardRebuildInput, a: number, b: number, pieces: number): number {
  const entry = input.nextEntry
  if (!entry) return Infinity
  const P = input.pieceLength
  let bytes = pieces + 1024
  for (let c = a; c < b; c++) {
    bytes += entry[c]
    const rest = input.next.length[c] % P
    if (rest !== 0 && c < b - 1) bytes += padEntryByteLength(P - rest)
  }
  return bytes
}

function shardPieces(input: ShardRebuildInput, old: OldShardPieces, a: number, b: number, scratch: { pieces?: Buffer }): Buffer | string {
  const P = input.pieceLength
  let total = 0
  for (let c = a; c < b; c++) total += Math.ceil(input.next.length[c] / P)
  // Copied into the files list by its finish(): free for the next shard's afterwards. Room to
  // spare, as shards of a generation differ by a little: not grown (a new buffer) shard after shard.
  if (!(scratch.pieces && scratch.pieces.length >= total * 20)) scratch.pieces = Buffer.allocUnsafe(Math.ceil(total * 20 * 1.25))
  const pieces = scratch.pieces.subarray(0, total * 20)
  let at = 0
  for (let c = a; c < b; c++) {
    const length = input.next.length[c]
    const n = Math.ceil(length / P) * 20
    const ending = c === b - 1 && length % P !== 0
    const k = input.origin[c]
    // Kept files in a row of the previous shard, none ending either shard: their hashes in one copy.
    let run = k >= 0 ? keptInside(input, old, c, b) - c : 0
    while (c + run < b - 1 && input.origin[c + run] === k + run && k >= 0 && !old.isLast(k + run)) run++
    if (run > 1) {
      const span = old.piecesRun(k, k + run)
      if (typeof span === 'string') return span
      at += span.torrent.copy(pieces, at, span.from, span.to)
      c += run - 1
      continue
    }
    if (k < 0) {
      const d = input.digests.get(contentPathString(input.next, c))
      if (!d || d.pieces.length !== n || (ending && !d.tail)) return `${contentPathString(input.next, c)} has no digest`
      d.pieces.copy(pieces, at)
      if (ending) d.tail!.copy(pieces, at + n - 20)
      at += n
      continue
    }
    const src = old.piecesOf(k)
    if (typeof src === 'string') return src
    src.pieces.copy(pieces, at)
    if (src.ended !== ending && length % P !== 0) {
      // Now ends its shard, or no longer does: its last piece hashed the other way, from disk.
      const last = lastPieceHashes(join(input.save, contentPathString(input.next, c)), length, P)
      if (!last) return `${contentPathString(input.next, c)} changed but the hint does not name it`
      ;(ending ? last.tail : last.padded).copy(pieces, at + n - 20)
    }
    at += n
  }
  return pieces
}

/**
 * For new file c, kept from previous file k = origin[c]: the last file of the run from c (c
 * itself at least) that is kept in a row (keptUntil), before the last file of new shard [a, b)
 * and before the last file of k's previous shard. Files of such a run need no question each:
 * their entries and piece hashes are the previous ones, in a row, none padded otherwise than
 * before. The callers go on file by file from there (the shards' last files, a run's end).
 */
function keptInside(input: ShardRebuildInput, old: OldShardPieces, c: number, b: number): number {
  const until = input.keptUntil
  if (!until) return c
  const k = input.origin[c]
  return Math.max(c, Math.min(until[c], b - 1, c + old.lastOfShard(k) - k) - 1)
}

/** How many first bytes `a` and `b` have in common (compared 16 KiB at a time, then byte by byte). */
function commonPrefix(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length)
  let at = 0
  while (at + 16384 <= n && a.compare(b, at, at + 16384, at, at + 16384) === 0) at += 16384
  while (at < n && a[at] === b[at]) at++
  return at
}

/** Index of the shard holding content file `c` (starts ascending, starts[0] = 0). */
function shardOf(starts: number[], c: number): number {
  let lo = 0
  let hi = starts.length - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1
    if (starts[mid] <= c) lo = mid
    else hi = mid - 1
  }
  return lo
}

/**
 * The previous shard torrents, read when first needed. Within a shard every file starts on a
 * piece boundary and every entry has a length data.dsync implies, so a file's piece hashes
 * and its entry are found by offset: the hashes are the file's last bytes (`6:pieces<N>:…ee`),
 * the files list starts after `4:infod5:filesl` and must end with `e4:name` where the sums say.
 */
interface OldShard {
  torrent: Buffer
  list: number
  /** Where its files list ends (`e4:name…` follows). */
  listEnd: number
  pieces: number
  /** The buffer `torrent` was read into (its start), back to the scratch pool when no longer held. */
  backing: Buffer
  /** Its info dict hashed to its name already (at once with scratch buffers; else see checkUsed). */
  checked: boolean
}

class OldShardPieces {
  private readonly files = new Map<number, OldShard | string>()
  /** Pieces before each previous content file within its shard. */
  private readonly firstPiece: Float64Array
  /** Entry bytes before each previous content file, over all shards (pad entries counted). */
  private readonly offset: Float64Array
  private readonly shardOfFile: Uint32Array
  private readonly shardPieceCount: number[] = []
  /** Previous shards loaded since beginShard(): every one is checked before that shard is handed over. */
  private readonly used = new Set<number>()
  /** Previous shards handed over as new ones (kept): their buffers are never written over. */
  private readonly kept = new Set<number>()
  /**
   * Buffers of previous shard files no longer held (without scratch buffers: gendsync), to write
   * new shards into. Their pages were touched already (read, checked, copied from): a fresh
   * buffer's first writes fault its pages in, ~90 ms per 30 MB on a VM measured (the new shards
   * of a hinted run at 200k files are ~30 MB).
   */
  private readonly spares: Buffer[] = []

  constructor(private readonly input: ShardRebuildInput) {
    const { old, oldStarts, oldEntry, pieceLength: P } = input
    // Every element is written below, so warmed memory will do: 4 MB at 200k files, ~1,000 pages
    // that fresh arrays fault in on the main thread at their first write (warm-memory.ts).
    this.firstPiece = newArray(Float64Array, old.count, input.memory)
    this.offset = newArray(Float64Array, old.count + 1, input.memory)
    this.shardOfFile = newArray(Uint32Array, old.count, input.memory)
    let at = 0
    for (let t = 0; t < oldStarts.length; t++) {
      const end = t + 1 < oldStarts.length ? oldStarts[t + 1] : old.count
      let n = 0
      for (let k = oldStarts[t]; k < end; k++) {
        this.firstPiece[k] = n
        this.shardOfFile[k] = t
        n += Math.ceil(old.length[k] / P)
        this.offset[k] = at
        const rest = old.length[k] % P
        at += oldEntry[k] + (rest !== 0 && k < end - 1 ? padEntryByteLength(P - rest) : 0)
      }
      this.shardPieceCount.push(n)
    }
    this.offset[old.count] = at
  }

  /** Mean bytes of a previous file's entry in a files list, its pad entry counted. */
  meanEntryBytes(): number {
    return this.input.old.count === 0 ? 96 : this.offset[this.input.old.count] / this.input.old.count
  }

  /** The last previous file of the shard holding previous file k. */
  lastOfShard(k: number): number {
    const t = this.shardOfFile[k]
    return (t + 1 < this.input.oldStarts.length ? this.input.oldStarts[t + 1] : this.input.old.count) - 1
  }

  isLast(k: number): boolean {
    const t = this.shardOfFile[k]
    return k === (t + 1 < this.input.oldStarts.length ? this.input.oldStarts[t + 1] : this.input.old.count) - 1
  }

  torrent(t: number): Buffer | string {
    const got = this.load(t)
    return typeof got === 'string' ? got : got.torrent
  }

  /** The bytes of entries k..end-1 (with their pad entries) in their previous shard torrent. */
  entries(k: number, end: number): { torrent: Buffer; from: number; to: number } | string {
    const t = this.shardOfFile[k]
    const got = this.load(t)
    if (typeof got === 'string') return got
    const base = got.list - this.offset[this.input.oldStarts[t]]
    return { torrent: got.torrent, from: base + this.offset[k], to: base + this.offset[end] }
  }

  /** Where the piece hashes of previous files k..end-1 (one shard, none its last) are, in its torrent. */
  piecesRun(k: number, end: number): { torrent: Buffer; from: number; to: number } | string {
    const got = this.load(this.shardOfFile[k])
    if (typeof got === 'string') return got
    return { torrent: got.torrent, from: got.pieces + this.firstPiece[k] * 20, to: got.pieces + this.firstPiece[end] * 20 }
  }

  piecesOf(k: number): { pieces: Buffer; ended: boolean } | string {
    const got = this.load(this.shardOfFile[k])
    if (typeof got === 'string') return got
    const from = got.pieces + this.firstPiece[k] * 20
    return { pieces: got.torrent.subarray(from, from + Math.ceil(this.input.old.length[k] / this.input.pieceLength) * 20), ended: this.isLast(k) }
  }

  /** Previous shard `t`, loaded. */
  shard(t: number): OldShard | string {
    return this.load(t)
  }

  /** Where previous file `k`'s piece hashes are in its shard's bytes. */
  piecesAt(got: OldShard, k: number): number {
    return got.pieces + this.firstPiece[k] * 20
  }

  /** Whether a previous shard's bytes after its files list are the ones a shard named `name` gets (InfoWriter.finish). */
  endsAsWritten(got: OldShard, name: string): boolean {
    const end = Buffer.from(`e4:name${Buffer.byteLength(name)}:${name}12:piece lengthi${this.input.pieceLength}e6:pieces${got.torrent.length - 1 - got.pieces - 1}:`, 'utf8')
    return got.pieces - got.listEnd === end.length && got.torrent.subarray(got.listEnd, got.pieces).equals(end)
  }

  /**
   * Previous shard `t` hashes to its name, given the SHA-1 of its info dict's bytes before `from`
   * (`prefix`, used up); a reason if not. Marked checked: it is not hashed again.
   */
  checkRest(t: number, got: OldShard, prefix: ReturnType<typeof createHash>, from: number): string | undefined {
    if (!got.checked && prefix.update(got.torrent.subarray(from, got.torrent.length - 1)).digest('hex') !== this.input.oldShards[t]) return this.damaged(t)
    got.checked = true
    return undefined
  }

  /** Previous shard `t` is a new shard as it is: its bytes are output, never a spare. */
  keep(t: number): void {
    this.kept.add(t)
  }

  /**
   * Previous shards before the one holding previous file `k` are done with (no later shard reads
   * them; k < 0: none is known done): each is checked against its name, if it was not yet, and
   * its buffer, unless kept, becomes a spare. A reason if one is damaged.
   */
  doneBefore(k: number): string | undefined {
    if (k < 0) return undefined
    const u = this.shardOfFile[k]
    for (const [t, got] of this.files) {
      if (t >= u) continue
      const bad = this.check(t)
      if (bad) return bad
      this.spareIfFree(t, got)
      this.files.delete(t)
    }
    return undefined
  }

  /** Previous shard `t`'s buffer, done with, as a spare: not when it is output (kept) or a scratch buffer (recycled). */
  private spareIfFree(t: number, got: OldShard | string): void {
    if (!this.input.scratch && typeof got !== 'string' && !this.kept.has(t)) this.spares.push(got.backing)
  }

  /** The bytes of `buf` after its first `used` (a new shard's), as a spare when worth it. */
  spareRest(buf: Buffer, used: number): void {
    if (buf.length - used >= 64 << 10) this.spares.push(buf.subarray(used))
  }

  /** The smallest spare buffer of at least `bytes` (taken out of the spares), if any. */
  spare(bytes: number): Buffer | undefined {
    let best = -1
    for (let i = 0; i < this.spares.length; i++) if (this.spares[i].length >= bytes && (best < 0 || this.spares[i].length < this.spares[best].length)) best = i
    return best < 0 ? undefined : this.spares.splice(best, 1)[0]
  }

  /** The shards held go back to the scratch pool (the splice is done with them). */
  release(): void {
    for (const got of this.files.values()) this.recycle(got)
    this.files.clear()
  }

  private load(t: number): OldShard | string {
    let got = this.files.get(t)
    this.used.add(t)
    if (got === undefined) {
      got = this.read(t)
      this.files.set(t, got)
      // Shards are made in order and read the previous ones in order: the few last ones are
      // enough (one read again costs a read, not a wrong result). The one dropped is not in
      // use: every caller copies what it takes before the next load. Not checked yet, it is
      // checked now (what was copied from it is its bytes).
      if (this.files.size > KEEP_OLD_SHARDS) {
        const first = Math.min(...this.files.keys())
        const bad = this.check(first)
        if (bad) return bad
        const dropped = this.files.get(first)!
        this.recycle(dropped)
        this.spareIfFree(first, dropped)
        this.files.delete(first)
      }
    }
    return got
  }

  /** A new shard is made from here on: the previous shards it loads are noted (checkUsed). */
  beginShard(): void {
    this.used.clear()
  }

  /**
   * The previous shards loaded since beginShard() hash to their names: a reason otherwise. The
   * new shard's bytes, copied from theirs, are not handed over before. With `info`, the new
   * shard's info dict: previous shard `t`'s check and the new infohash share the SHA-1 of their
   * common first bytes (a same-size change leaves all but the last fifth of a shard as it was),
   * and the new infohash is returned.
   */
  checkUsed(made?: { t: number | undefined; info: Buffer }): { infoHash?: string } | string {
    let infoHash: string | undefined
    const t = made?.t
    const got = t === undefined ? undefined : this.files.get(t)
    if (made && got !== undefined && typeof got !== 'string' && !got.checked) {
      const old = got.torrent.subarray(got.list - 'd5:filesl'.length, got.torrent.length - 1)
      const same = commonPrefix(old, made.info)
      const prefix = createHash('sha1').update(old.subarray(0, same))
      infoHash = prefix.copy().update(made.info.subarray(same)).digest('hex')
      if (prefix.update(old.subarray(same)).digest('hex') !== this.input.oldShards[t!]) return this.damaged(t!)
      got.checked = true
    } else if (made) {
      infoHash = createHash('sha1').update(made.info).digest('hex')
    }
    for (const u of this.used) {
      const bad = this.check(u)
      if (bad) return bad
    }
    return { infoHash }
  }

  /** Previous shard `t`'s bytes, if they are loaded and hash to its name (else undefined). */
  checkedTorrent(t: number | undefined): Buffer | undefined {
    const got = t === undefined ? undefined : this.files.get(t)
    return got !== undefined && typeof got !== 'string' && got.checked ? got.torrent : undefined
  }

  private check(t: number): string | undefined {
    const got = this.files.get(t)
    if (got === undefined || typeof got === 'string' || got.checked) return undefined
    const info = got.torrent.subarray(got.list - 'd5:filesl'.length, got.torrent.length - 1)
    if (createHash('sha1').update(info).digest('hex') !== this.input.oldShards[t]) return this.damaged(t)
    got.checked = true
    return undefined
  }

  private damaged(t: number): string {
    return `${join(this.input.shardsDir, `${this.input.oldShards[t]}.torrent`)} is not the torrent its name says`
  }

  private recycle(got: OldShard | string): void {
    const pool = this.pool()
    if (pool && typeof got !== 'string' && pool.length <= KEEP_OLD_SHARDS) pool.push(got.backing)
  }

  /** Where previous shard files are read into: reused buffers only when the caller holds no torrent past onShard. */
  private pool(): Buffer[] | undefined {
    return this.input.onShard ? this.input.scratch?.reads : undefined
  }

  private read(t: number): OldShard | string {
    const { oldStarts, old, oldShards } = this.input
    const file = join(this.input.shardsDir, `${oldShards[t]}.torrent`)
    let torrent: Buffer
    let backing: Buffer
    const early = this.input.prefetched?.get(file)
    try {
      ;({ torrent, backing } = early ? { torrent: early, backing: early } : readInto(file, this.pool()))
    } catch {
      return `${file} cannot be read`
    }
    this.input.prefetched?.delete(file)
    const mismatch = `shard ${oldShards[t]} does not match the previous data.dsync`
    const size = this.shardPieceCount[t] * 20
    const tag = Buffer.from(`6:pieces${size}:`)
    const pieces = torrent.length - 2 - size
    if (pieces - tag.length < 0 || !torrent.subarray(pieces - tag.length, pieces).equals(tag) || torrent.toString('latin1', torrent.length - 2) !== 'ee') return mismatch
    const list = torrent.indexOf('4:infod5:filesl') + 15
    const end = t + 1 < oldStarts.length ? oldStarts[t + 1] : old.count
    const listEnd = list + this.offset[end] - this.offset[oldStarts[t]]
    if (list < 15 || torrent.toString('latin1', listEnd, listEnd + 7) !== 'e4:name' || torrent.toString('latin1', list, list + 10) !== 'd6:lengthi') return mismatch
    // Its bytes are copied into the new generation: they must still be the infohash they are named
    // by. With scratch buffers (the client) checked now; else once the shard using them is made
    // (checkUsed), sharing the hashing of their first bytes with that shard's infohash.
    const got = { torrent, list, listEnd, pieces, backing, checked: false }
    if (!this.input.scratch) return got
    this.files.set(t, got)
    return this.check(t) ?? got
  }
}

/**
 * A file's bytes, read into a buffer of `pool` big enough (taken out of it) or a new one with
 * room to spare (shard files of one generation differ by a little); `backing` is that buffer.
 */
function readInto(file: string, pool: Buffer[] | undefined): { torrent: Buffer; backing: Buffer } {
  if (!pool) {
    const torrent = readFileSync(file)
    return { torrent, backing: torrent }
  }
  const size = statSync(file).size
  const fit = pool.findIndex(b => b.length >= size)
  const backing = fit >= 0 ? pool.splice(fit, 1)[0] : Buffer.allocUnsafe(Math.ceil(size * 1.25))
  return { torrent: readFileInto(file, backing.subarray(0, size)), backing }
}
