import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import { contentPath, type ContentTable, type TableCosts } from '../manifest/content-table.js'
import { parseEntryLine } from '../manifest/format.js'
import { shardsIndexing } from '../manifest/hinted.js'
import type { RepoFiles } from '../manifest/paths.js'
import { entryByteLength } from '../torrent/encode-info.js'
import { costBytes, costTokens, pathHash, type ShardCosts } from '../torrent/shards.js'

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
  /** Each previous content file's entry bytes in a files list, pad entry not counted. */
  oldEntry: Float64Array
  /** Each previous content file's shard costs (for its generation's shard boundaries), when the new ones were given. */
  costs?: ShardCosts
  /** Where each previous content file's path is: new content file c (>= 0, the same line), or -1 - j: `changed[j]`. */
  source: Int32Array
}

/** DEST's previous line at a path a delta names, as the splice needs it. */
export interface Before {
  key: Buffer
  /** The previous content file there (type f, size > 0), if any. */
  length?: number
  sha?: string
}

/** DEST's lines at the paths the deltas name, in path order. */
export function beforeList(before: Map<string, string | undefined>): Before[] {
  return [...before].map(([path, line]) => beforeAt(path, line)).sort((a, b) => Buffer.compare(a.key, b.key))
}

/** The path of previous content file k. */
export function oldKey(side: OldSide, next: ContentTable, changed: Before[], k: number): Buffer {
  const s = side.source[k]
  return s >= 0 ? contentPath(next, s) : changed[-1 - s].key
}

/**
 * The previous content files among the new list's content files `next` (all of it, or one run
 * of its lines) and DEST's previous lines `changed` at the paths the deltas name that fall in
 * the same range of paths. Their shard costs only when `nextCosts` has the new files' (the
 * splice's first pass); the second pass knows the boundaries and gives entry bytes alone.
 */
export function oldSide(next: ContentTable, nextCosts: TableCosts | Pick<TableCosts, 'entry'>, changed: Before[], pieceLength: number): OldSide {
  const previous = changed.filter(b => b.length !== undefined)
  const count = next.count - changedContent(next, changed) + previous.length
  const length = new Float64Array(count)
  const oldEntry = new Float64Array(count)
  const given = 'bytes' in nextCosts ? nextCosts : undefined
  const costs = given && { bytes: new Float64Array(count), tokens: new Float64Array(count), hash: new Uint32Array(count) }
  const source = new Int32Array(count)
  const origin = new Int32Array(next.count).fill(-1)
  let k = 0
  let j = 0
  // A previous content file at a path a delta names: its costs from its line.
  const fromLine = (at: number) => {
    const b = changed[at]
    const slashes = b.key.reduce((n, x) => n + (x === 0x2f ? 1 : 0), 0)
    length[k] = b.length!
    oldEntry[k] = entryByteLength(b.key, 0, b.key.length, b.length!)
    if (costs) {
      costs.bytes[k] = costBytes(b.key.length, slashes, b.length!, pieceLength)
      costs.tokens[k] = costTokens(slashes, b.length!, pieceLength)
      costs.hash[k] = pathHash(b.key.toString('utf8'))
    }
    source[k] = -1 - at
    return k++
  }
  for (let c = 0; c < next.count; c++) {
    // Past DEST's last changed line every file is untouched: no path to compare (most runs of lines).
    const key = j < changed.length ? contentPath(next, c) : undefined
    for (; key && j < changed.length && Buffer.compare(changed[j].key, key) < 0; j++) if (changed[j].length !== undefined) fromLine(j)
    if (key && j < changed.length && changed[j].key.equals(key)) {
      const b = changed[j]
      if (b.length !== undefined) {
        const at = fromLine(j)
        if (b.sha === shaOf(next, c)) origin[c] = at
      }
      j++
      continue
    }
    // Untouched: the same line in both lists.
    length[k] = next.length[c]
    oldEntry[k] = nextCosts.entry[c]
    if (costs) {
      costs.bytes[k] = given!.bytes[c]
      costs.tokens[k] = given!.tokens[c]
      costs.hash[k] = given!.hash[c]
    }
    source[k] = c
    origin[c] = k++
  }
  for (; j < changed.length; j++) if (changed[j].length !== undefined) fromLine(j)
  if (k !== count) throw new Error(`previous content files: ${k}, expected ${count}`)
  return { old: { count, length }, origin, oldEntry, costs, source }
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
      tail: from => {
        const tail = Buffer.alloc(size - from)
        return readSync(fd, tail, 0, tail.length, from) === tail.length ? tail : undefined
      },
    })
  } finally {
    closeSync(fd)
  }
}
