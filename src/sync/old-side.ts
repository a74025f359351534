import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import { contentPath, tableCosts, type ContentTable, type TableCosts } from '../manifest/content-table.js'
import { parseEntryLine } from '../manifest/format.js'
import { shardsIndexing } from '../manifest/hinted.js'
import type { RepoFiles } from '../manifest/paths.js'
import { entryByteLength } from '../torrent/encode-info.js'
import { costBytes, costTokens, pathHash, shardStartsOf } from '../torrent/shards.js'

/**
 * What the shard splice needs of the previous generation, without DEST's previous list in
 * memory (docs/SCALE.md, "Update memory"). A path no delta names has the same line in both
 * lists, so the previous content files are the new ones the deltas left alone plus the
 * previous content at the paths they name (DEST's lines there, `before`): their order, sizes,
 * entry bytes and shard boundaries follow from the new list's table and those few lines.
 */
export interface OldSide {
  /** The previous content files: how many, and each one's length. */
  old: { count: number; length: Float64Array }
  /** For each new content file, the previous one with the same path and SHA-256, or -1. */
  origin: Int32Array
  oldStarts: number[]
  /** Each previous content file's entry bytes in a files list, pad entry not counted. */
  oldEntry: Float64Array
}

interface Before {
  key: Buffer
  /** The previous content file there (type f, size > 0), if any. */
  length?: number
  sha?: string
}

export function oldSide(next: ContentTable, nextCosts: TableCosts, before: Map<string, string | undefined>, pieceLength: number): OldSide {
  const changed = [...before].map(([path, line]) => beforeAt(path, line))
  const previous = changed.filter(b => b.length !== undefined)
  const count = next.count - changedContent(next, changed) + previous.length
  const length = new Float64Array(count)
  const oldEntry = new Float64Array(count)
  const costs = { bytes: new Float64Array(count), tokens: new Float64Array(count), hash: new Uint32Array(count) }
  const origin = new Int32Array(next.count).fill(-1)
  let k = 0
  let j = 0
  // A previous content file at a path a delta names: its costs from its line.
  const fromLine = (b: Before) => {
    const slashes = b.key.reduce((n, x) => n + (x === 0x2f ? 1 : 0), 0)
    length[k] = b.length!
    oldEntry[k] = entryByteLength(b.key, 0, b.key.length, b.length!)
    costs.bytes[k] = costBytes(b.key.length, slashes, b.length!, pieceLength)
    costs.tokens[k] = costTokens(slashes, b.length!, pieceLength)
    costs.hash[k] = pathHash(b.key.toString('utf8'))
    return k++
  }
  for (let c = 0; c < next.count; c++) {
    const key = contentPath(next, c)
    for (; j < changed.length && Buffer.compare(changed[j].key, key) < 0; j++) if (changed[j].length !== undefined) fromLine(changed[j])
    if (j < changed.length && changed[j].key.equals(key)) {
      const b = changed[j++]
      if (b.length !== undefined) {
        const at = fromLine(b)
        if (b.sha === shaOf(next, c)) origin[c] = at
      }
      continue
    }
    // Untouched: the same line in both lists.
    length[k] = next.length[c]
    oldEntry[k] = nextCosts.entry[c]
    costs.bytes[k] = nextCosts.bytes[c]
    costs.tokens[k] = nextCosts.tokens[c]
    costs.hash[k] = nextCosts.hash[c]
    origin[c] = k++
  }
  for (; j < changed.length; j++) if (changed[j].length !== undefined) fromLine(changed[j])
  if (k !== count) throw new Error(`previous content files: ${k}, expected ${count}`)
  return { old: { count, length }, origin, oldStarts: shardStartsOf(costs), oldEntry }
}

function beforeAt(path: string, line: string | undefined): Before {
  const key = Buffer.from(path, 'utf8')
  if (line === undefined) return { key }
  const e = parseEntryLine(line)
  if (typeof e === 'string' || e.type !== 'f' || e.size === 0) return { key }
  return { key, length: e.size, sha: e.sha256!.toString('hex') }
}

/** New content files at the paths the deltas name. */
function changedContent(next: ContentTable, changed: Before[]): number {
  let n = 0
  let j = 0
  for (let c = 0; c < next.count && j < changed.length; c++) {
    const key = contentPath(next, c)
    while (j < changed.length && Buffer.compare(changed[j].key, key) < 0) j++
    if (j < changed.length && changed[j].key.equals(key)) n++
  }
  return n
}

/** The SHA-256 field (hex) of new content file `c`'s line. */
function shaOf(next: ContentTable, c: number): string {
  const { buf, starts } = next.lines
  const line = buf.toString('latin1', starts[next.line[c]], starts[next.line[c] + 1] - 1)
  return line.split('\t', 5)[4]
}

/** The new list's content costs (for its shard boundaries) and, from them, the previous side. */
export function bothSides(next: ContentTable, before: Map<string, string | undefined>, pieceLength: number): { starts: number[]; side: OldSide } {
  const nextCosts = tableCosts(next, pieceLength)
  return { starts: shardStartsOf(nextCosts), side: oldSide(next, nextCosts, before, pieceLength) }
}

/**
 * The previous index torrent's shards, when it is the index of DEST's previous list (kept on
 * disk: its size and its last piece are read, not the whole list), else a reason.
 */
export function previousShardsOf(files: RepoFiles, previousList: string, pieceLength: number): { shards: string[] } | string {
  let fd: number
  try {
    fd = openSync(previousList, 'r')
  } catch {
    return 'the previous data.dsync was not kept'
  }
  try {
    const size = fstatSync(fd).size
    return shardsIndexing(files, {
      size, pieceLength,
      lastPiece: P => {
        const from = Math.max(0, (Math.ceil(size / P) - 1) * P)
        const tail = Buffer.alloc(size - from)
        return readSync(fd, tail, 0, tail.length, from) === tail.length ? tail : undefined
      },
    })
  } finally {
    closeSync(fd)
  }
}
