import { decimalLength, entryByteLength } from '../torrent/encode-info.js'
import { costBytes, costTokens, pathHash, type ShardCosts } from '../torrent/shards.js'
import { unescapePath } from './escape.js'
import type { Lines } from './manifest-lines.js'
import { newArray, type WarmMemory } from './warm-memory.js'

/**
 * The torrent's content files of a data.dsync (type `f`, size > 0, in data.dsync order) as
 * typed arrays over the file's bytes: no object or string per file. What gendsync needs to
 * place shard boundaries and encode shard torrents straight from data.dsync, at the cost of
 * one pass over its bytes (docs/SCALE.md, "Host-side cost").
 */
export interface ContentTable {
  lines: Lines
  count: number
  /** Entry line of each content file. */
  line: Uint32Array
  length: Float64Array
  /** The path field's byte range in the buffer, as written (escaped when it holds a backslash). */
  pathFrom: Uint32Array
  pathTo: Uint32Array
}

export function contentTable(lines: Lines): ContentTable {
  const buf = lines.buf
  // Never more content files than lines: a few edited lines (gendsync --changed) allocate a few rows, not 64k.
  let t = alloc(lines, Math.max(1, Math.min(1 << 16, lines.count)))
  let count = 0
  for (let i = 0; i < lines.count; i++) {
    const at = lines.starts[i]
    if (buf[at] !== 0x66 || buf[at + 1] !== 0x09) continue // 'f\t'
    // Third field: the size, plain decimal digits; the path is the sixth.
    let p = buf.indexOf(0x09, at + 2) + 1
    let size = 0
    for (; buf[p] !== 0x09; p++) size = size * 10 + (buf[p] - 0x30)
    if (size === 0) continue
    if (count === t.line.length) t = grow(t, count * 2)
    p = buf.indexOf(0x09, buf.indexOf(0x09, p + 1) + 1) + 1
    const end = lines.starts[i + 1] - 1
    const tab = buf.indexOf(0x09, p)
    t.line[count] = i
    t.length[count] = size
    t.pathFrom[count] = p
    t.pathTo[count++] = tab < 0 || tab > end ? end : tab
  }
  return {
    lines, count, line: t.line.subarray(0, count), length: t.length.subarray(0, count),
    pathFrom: t.pathFrom.subarray(0, count), pathTo: t.pathTo.subarray(0, count),
  }
}

function alloc(lines: Lines, n: number): ContentTable {
  return { lines, count: 0, line: new Uint32Array(n), length: new Float64Array(n), pathFrom: new Uint32Array(n), pathTo: new Uint32Array(n) }
}

function grow(t: ContentTable, n: number): ContentTable {
  const g = alloc(t.lines, n)
  g.line.set(t.line)
  g.length.set(t.length)
  g.pathFrom.set(t.pathFrom)
  g.pathTo.set(t.pathTo)
  return g
}

/** Content file `c`'s path as UTF-8 bytes: a view into data.dsync unless it was escaped. */
export function contentPath(t: ContentTable, c: number): Buffer {
  const buf = t.lines.buf
  const from = t.pathFrom[c]
  const to = t.pathTo[c]
  for (let i = from; i < to; i++) {
    if (buf[i] === 0x5c) {
      const raw = buf.toString('utf8', from, to)
      return Buffer.from(unescapePath(raw) ?? raw, 'utf8')
    }
  }
  return buf.subarray(from, to)
}

/** Content file `c`'s path as a string (for the few files that need one). */
export function contentPathString(t: ContentTable, c: number): string {
  return contentPath(t, c).toString('utf8')
}

/** shardStarts' inputs, plus each file's entry bytes in a torrent's files list (encode-info.ts). */
export interface TableCosts extends ShardCosts {
  entry: Float64Array
}

/**
 * shardStarts' inputs for every content file, read from the path bytes: the same numbers
 * fileCost and pathHash give for the path as a string (FNV-1a runs over UTF-16 units, which
 * are the bytes themselves for an ASCII path; any other path is decoded first).
 */
export function tableCosts(t: ContentTable, pieceLength: number, reuse?: { costs: TableCosts; origin: Int32Array }, memory?: WarmMemory): TableCosts {
  const n = t.count
  // Every element is written below: warmed memory (a hinted gendsync's, warm-memory.ts) will do.
  const costs: TableCosts = {
    bytes: newArray(Float64Array, n, memory), tokens: newArray(Float64Array, n, memory), hash: newArray(Uint32Array, n, memory), entry: newArray(Float64Array, n, memory),
  }
  for (let c = 0; c < n; c++) {
    // A file kept from the previous list (same path, same size) costs what it cost there; files
    // kept in a row (a hinted run: all but a few hundred of 200k) copied as blocks, not one by one.
    const k = reuse ? reuse.origin[c] : -1
    if (k >= 0) {
      const { origin, costs: was } = reuse!
      let end = c + 1
      while (end < n && origin[end] === k + (end - c)) end++
      const to = k + (end - c)
      costs.bytes.set(was.bytes.subarray(k, to), c)
      costs.tokens.set(was.tokens.subarray(k, to), c)
      costs.hash.set(was.hash.subarray(k, to), c)
      costs.entry.set(was.entry.subarray(k, to), c)
      c = end - 1
      continue
    }
    let buf = t.lines.buf
    let from = t.pathFrom[c]
    let to = t.pathTo[c]
    let slashes = 0
    let ascii = true
    let escaped = false
    let h = 0x811c9dc5
    // entryByteLength's segment sums in the same pass: decimal length + ':' + bytes per segment.
    let segments = 0
    let seg = from
    for (let i = from; i < to; i++) {
      const b = buf[i]
      if (b === 0x2f) {
        slashes++
        segments += decimalLength(i - seg) + 1 + (i - seg)
        seg = i + 1
      } else if (b > 0x7f) ascii = false
      else if (b === 0x5c) escaped = true
      h = Math.imul(h ^ b, 0x01000193)
    }
    const length = t.length[c]
    if (escaped) {
      // Escaped in data.dsync: measure the path itself.
      buf = contentPath(t, c)
      from = 0
      to = buf.length
      slashes = 0
      for (let i = 0; i < to; i++) if (buf[i] === 0x2f) slashes++
      ascii = false
      costs.entry[c] = entryByteLength(buf, from, to, length)
    } else {
      costs.entry[c] = 20 + decimalLength(length) + segments + decimalLength(to - seg) + 1 + (to - seg)
    }
    costs.bytes[c] = costBytes(to - from, slashes, length, pieceLength)
    costs.tokens[c] = costTokens(slashes, length, pieceLength)
    costs.hash[c] = ascii ? h >>> 0 : pathHash(buf.toString('utf8', from, to))
  }
  return costs
}

/**
 * Each content file's entry bytes in a torrent's files list (`tableCosts(t).entry`) and nothing
 * else: the client's second splice pass (src/sync/shard-windows.ts) has its shard boundaries
 * from the first and needs only these, so no path hash and no shard costs per file again.
 * The path's separators are found with indexOf, not byte by byte.
 */
export function tableEntries(t: ContentTable): Float64Array {
  const n = t.count
  const entry = new Float64Array(n)
  const buf = t.lines.buf
  // The next escaped byte at or after a path's start: one search per escaped path, not per path.
  let escape = -1
  for (let c = 0; c < n; c++) {
    const from = t.pathFrom[c]
    const to = t.pathTo[c]
    if (escape < from) {
      const at = buf.indexOf(0x5c, from)
      escape = at < 0 ? Infinity : at
    }
    if (escape < to) {
      const path = contentPath(t, c)
      entry[c] = entryByteLength(path, 0, path.length, t.length[c])
      continue
    }
    let bytes = 20 + decimalLength(t.length[c])
    let seg = from
    for (let j = buf.indexOf(0x2f, seg); j >= 0 && j < to; j = buf.indexOf(0x2f, seg)) {
      bytes += decimalLength(j - seg) + 1 + (j - seg)
      seg = j + 1
    }
    entry[c] = bytes + decimalLength(to - seg) + 1 + (to - seg)
  }
  return entry
}
