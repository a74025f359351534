import { Reader, readTorrentInfo, TorrentFormatError, type TorrentInfo } from './read.js'
import { shardInfoHashOf } from './shards.js'

/**
 * The files a layout expects, in order, read without an object per file: entry `i` has the
 * path bytes `pathBuf(i)[pathStart(i), pathEnd(i))` (UTF-8, `/`-separated) and a length.
 */
export interface ExpectedFiles {
  readonly count: number
  length(i: number): number
  pathBuf(i: number): Buffer
  pathStart(i: number): number
  pathEnd(i: number): number
}

/** `heads` (paths given as bytes), then `rest` from its first entry. */
export function prefixed(heads: { path: Buffer; length: number }[], rest?: ExpectedFiles): ExpectedFiles {
  const n = heads.length
  return {
    count: n + (rest?.count ?? 0),
    length: i => i < n ? heads[i].length : rest!.length(i - n),
    pathBuf: i => i < n ? heads[i].path : rest!.pathBuf(i - n),
    pathStart: i => i < n ? 0 : rest!.pathStart(i - n),
    pathEnd: i => i < n ? heads[i].path.length : rest!.pathEnd(i - n),
  }
}

export interface RunMatch {
  /** Expected entries the list held (from `from` on). */
  count: number
  /** Offset of each in the torrent's content (pads in between are implied). */
  offsets: Float64Array
  totalLength: number
}

/**
 * Walks a torrent's `files` list (the reader at its `l`) against `expected` from entry `from`
 * on, with the dsync layout's BEP 47 pads between files, allocating nothing per entry: what a
 * host needs to check a 1M-file repository's torrents against data.dsync at start. `exact`:
 * the list must hold every remaining expected entry; otherwise it may stop early (a shard).
 * Undefined at the first difference of any kind (the caller explains it the slow way).
 */
export function matchFileList(r: Reader, pieceLength: number, expected: ExpectedFiles, from: number, exact: boolean): RunMatch | undefined {
  try {
    return walk(r, pieceLength, expected, from, exact)
  } catch (err) {
    if (err instanceof TorrentFormatError) return undefined
    throw err
  }
}

/**
 * The offsets of the walk in progress, grown as needed and reused by the next walk: only the
 * result's own copy is kept. A client walks one list per shard (77 at 1M files), and an array
 * grown by doubling per walk left freed blocks in glibc's heap between the kept ones.
 */
let walkOffsets = new Float64Array(4096)

function walk(r: Reader, pieceLength: number, expected: ExpectedFiles, from: number, exact: boolean): RunMatch | undefined {
  if (r.peek() !== 0x6c) return undefined
  r.pos++
  let offsets = walkOffsets
  let i = from
  let offset = 0
  let padNeeded = 0
  let lastWasPad = false
  while (r.peek() !== 0x65) {
    // The path is compared as it is read, when a file (not a pad) is due here.
    const e = readEntry(r, expected, padNeeded > 0 || i >= expected.count ? -1 : i)
    if (e === undefined) return undefined
    if (padNeeded > 0) {
      if (!e.pad || e.length !== padNeeded) return undefined
      offset += e.length
      padNeeded = 0
      lastWasPad = true
      continue
    }
    if (e.pad || i >= expected.count || e.length !== expected.length(i) || !e.pathOk) return undefined
    const n = i - from
    if (n === offsets.length) {
      const grown = new Float64Array(offsets.length * 2)
      grown.set(offsets)
      offsets = walkOffsets = grown
    }
    offsets[n] = offset
    offset += e.length
    i++
    const rest = e.length % pieceLength
    padNeeded = rest === 0 ? 0 : pieceLength - rest
    lastWasPad = false
  }
  r.pos++
  // The layout never ends on a pad; an empty list, or a short one where all were due, differs.
  if (lastWasPad || i === from || (exact && i !== expected.count)) return undefined
  return { count: i - from, offsets: offsets.slice(0, i - from), totalLength: offset }
}

/** Reused for every entry: the walk allocates nothing per file. */
const entry = { length: -1, pad: false, pathAt: -1, pathOk: false }

/**
 * One `{attr, length, path}` dict; keys compared as bytes. With `i >= 0` the path is compared
 * with expected entry i as it is read (undefined at once when it differs); else skipped.
 */
function readEntry(r: Reader, expected?: ExpectedFiles, i = -1): typeof entry | undefined {
  if (r.peek() !== 0x64) return undefined
  r.pos++
  entry.length = -1
  entry.pad = false
  entry.pathAt = -1
  entry.pathOk = false
  const buf = r.buf
  while (r.peek() !== 0x65) {
    const k = r.span()
    const len = r.pos - k
    if (isKey(buf, k, len, 'length')) entry.length = r.int()
    else if (isKey(buf, k, len, 'path')) {
      entry.pathAt = r.pos
      if (i < 0) r.skip()
      else if (!(entry.pathOk = pathMatches(r, expected!, i))) return undefined
    } else if (isKey(buf, k, len, 'attr')) {
      const s = r.span()
      for (let q = s; q < r.pos; q++) if (buf[q] === 0x70) entry.pad = true // 'p'
    } else r.skip()
  }
  r.pos++
  return entry.length < 0 || entry.pathAt < 0 ? undefined : entry
}

function isKey(buf: Buffer, at: number, len: number, key: string): boolean {
  if (len !== key.length) return false
  for (let j = 0; j < len; j++) if (buf[at + j] !== key.charCodeAt(j)) return false
  return true
}

/** The path list at the reader, joined by `/`, equals expected entry i's bytes; read past when it does. */
function pathMatches(r: Reader, expected: ExpectedFiles, i: number): boolean {
  const eb = expected.pathBuf(i)
  const end = expected.pathEnd(i)
  let p = expected.pathStart(i)
  const buf = r.buf
  if (r.peek() !== 0x6c) return false
  r.pos++
  let parts = 0
  while (r.peek() !== 0x65) {
    const s = r.span()
    const len = r.pos - s
    if (parts++ > 0 && (p >= end || eb[p++] !== 0x2f)) return false
    if (p + len > end) return false
    for (let j = 0; j < len; j++) if (buf[s + j] !== eb[p + j]) return false
    p += len
  }
  r.pos++
  return parts > 0 && p === end
}

/**
 * The shard infohashes an index torrent's `files` list names (the reader at its `l`), in
 * order, like `indexedShards` but stopping at the first entry after data.dsync that is not
 * a shard .torrent: a one-torrent repository's list is not walked (it may hold 1M files).
 * The reader is left where it was.
 */
export function indexedShardsAt(r: Reader): string[] | undefined {
  const save = r.pos
  const named: string[] = []
  try {
    if (r.peek() !== 0x6c) return undefined
    r.pos++
    let seen = 0
    while (r.peek() !== 0x65) {
      const e = readEntry(r)
      if (e === undefined) return undefined
      if (e.pad || seen++ === 0) continue
      const ih = shardInfoHashOf(pathText(r, e.pathAt))
      if (!ih) return undefined
      named.push(ih)
    }
    return named.length > 0 ? named : undefined
  } catch (err) {
    if (err instanceof TorrentFormatError) return undefined
    throw err
  } finally {
    r.pos = save
  }
}

function pathText(r: Reader, at: number): string {
  const save = r.pos
  r.pos = at
  const parts: string[] = []
  r.list(() => parts.push(r.bytes().toString('utf8')))
  r.pos = save
  return parts.join('/')
}

/**
 * A torrent read with its `files` list walked by `walk` (which returns whether it read the
 * whole list; if not, the rest of the list is skipped): `files` stays empty, nothing is
 * made per file. Format errors are thrown as by readTorrentInfo.
 */
export function readTorrentWalked(torrent: Buffer, walk: (r: Reader) => boolean): TorrentInfo {
  return readTorrentInfo(torrent, {
    onFiles: r => {
      const at = r.pos
      if (walk(r)) return
      r.pos = at
      r.skip()
    },
  })
}

/** The torrent's piece length is `pieceLength` and it has one hash per piece of the walked run. */
export function piecesFit(info: TorrentInfo, pieceLength: number, run: RunMatch): boolean {
  return info.pieceLength === pieceLength && info.pieces.length === Math.ceil(run.totalLength / pieceLength) * 20
}
