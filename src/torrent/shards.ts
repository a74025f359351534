import { pieceHashes } from './piece-hashes.js'
import { MANIFEST_TORRENT_PATH } from './layout.js'
import { buildTorrent, type BuiltTorrent } from './build.js'
import { decimalLength } from './encode-info.js'
import { layoutFiles, piecesOf } from './layout.js'

/**
 * Shards: a repository too big for one torrent that standard clients load is split into
 * shard torrents over contiguous ranges of data.dsync's order, plus an index torrent
 * (data.dsync and the shard .torrent files) that keeps the repository's one magnet link.
 * docs/SCALE.md ("Shards") has the design and the limits it keeps.
 *
 * libtorrent refuses a .torrent over 10 MB or 3M bencode tokens; a shard is cut well
 * before either (4 MB, 1M tokens, estimated from the paths before anything is hashed).
 * Boundaries are content-defined: a shard ends before a file whose path hashes to 0 mod
 * AVG_FILES, so inserting or removing files moves no boundary elsewhere and an unchanged
 * range keeps its infohash (and its swarm) across generations.
 */
export const SHARD_TORRENT_DIR = '.dsync/shards'
/** A repository stays one torrent (as it always was) up to this many content files... */
export const SINGLE_MAX_FILES = 32768
/** ...and this much estimated info dict, and these many bencode tokens. */
export const MAX_INFO_BYTES = 4 << 20
export const MAX_TOKENS = 1_000_000
/** A shard boundary falls on average every this many files (a power of two). */
export const AVG_FILES = 16384
/** No content-defined boundary closer than this to the previous one. */
export const MIN_FILES = 2048

export interface ShardInput {
  path: string
  length: number
}

/** What one file adds to an info dict: its entry, its pad entry and its piece hashes. */
export function fileCost(f: ShardInput, pieceLength: number): { bytes: number; tokens: number } {
  let slashes = 0
  for (let i = 0; i < f.path.length; i++) if (f.path.charCodeAt(i) === 0x2f) slashes++
  return { bytes: costBytes(Buffer.byteLength(f.path), slashes, f.length, pieceLength), tokens: costTokens(slashes, f.length, pieceLength) }
}

/** fileCost's bytes from the path's UTF-8 length and its number of '/'. */
export function costBytes(pathBytes: number, slashes: number, length: number, pieceLength: number): number {
  const pad = length % pieceLength === 0 ? 0 : 1
  // d6:lengthi…e4:pathl…ee: 7 tokens + one per segment; a pad entry is 11 tokens, ~48 bytes.
  return 26 + decimalLength(length) + pathBytes + (slashes + 1) * 3 + pad * 48 + piecesOf(length, pieceLength) * 20
}

export function costTokens(slashes: number, length: number, pieceLength: number): number {
  return 7 + slashes + 1 + (length % pieceLength === 0 ? 0 : 11)
}

/** FNV-1a over the path's UTF-16 units: a cheap, stable function of the path alone. */
export function pathHash(path: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < path.length; i++) h = Math.imul(h ^ path.charCodeAt(i), 0x01000193)
  return h >>> 0
}

/** Per content file: its estimated info-dict bytes and tokens, and its path hash. */
export interface ShardCosts {
  bytes: Float64Array
  tokens: Float64Array
  hash: Uint32Array
}

/**
 * The first index of each shard in `files` (the torrent's content files in data.dsync
 * order). `[0]` alone: the repository is one torrent, laid out as it always was.
 */
export function shardStarts(files: ShardInput[], pieceLength: number): number[] {
  const costs: ShardCosts = { bytes: new Float64Array(files.length), tokens: new Float64Array(files.length), hash: new Uint32Array(files.length) }
  files.forEach((f, i) => {
    const c = fileCost(f, pieceLength)
    costs.bytes[i] = c.bytes
    costs.tokens[i] = c.tokens
    costs.hash[i] = pathHash(f.path)
  })
  return shardStartsOf(costs)
}

/** shardStarts over costs already computed (gendsync computes them from data.dsync's bytes). */
export function shardStartsOf(costs: ShardCosts): number[] {
  const stream = new ShardStartsStream()
  for (let i = 0; i < costs.hash.length; i++) stream.add(costs, i)
  return stream.finish()
}

/**
 * shardStartsOf one file at a time, for a caller that never holds every file's costs (the
 * client's shard splice at 1M files reads data.dsync in runs of lines). `add` returns true
 * when file i starts a shard (file 0 included); `finish` gives the starts, or [0] when the
 * whole generation fits one torrent.
 */
export class ShardStartsStream {
  readonly starts = [0]
  private n = 0
  private bytes = 0
  private tokens = 0
  private totalBytes = 0
  private totalTokens = 0

  add(costs: ShardCosts, i: number): boolean {
    const count = this.n - this.starts[this.starts.length - 1]
    const natural = count >= MIN_FILES && costs.hash[i] % AVG_FILES === 0
    const forced = count > 0 && (this.bytes + costs.bytes[i] > MAX_INFO_BYTES || this.tokens + costs.tokens[i] > MAX_TOKENS)
    const starts = this.n === 0 || natural || forced
    if (this.n > 0 && starts) {
      this.starts.push(this.n)
      this.bytes = 0
      this.tokens = 0
    }
    this.bytes += costs.bytes[i]
    this.tokens += costs.tokens[i]
    this.totalBytes += costs.bytes[i]
    this.totalTokens += costs.tokens[i]
    this.n++
    return starts
  }

  /** Files added so far. */
  get count(): number {
    return this.n
  }

  finish(): number[] {
    if (this.n <= SINGLE_MAX_FILES && this.totalBytes <= MAX_INFO_BYTES && this.totalTokens <= MAX_TOKENS) return [0]
    return this.starts
  }
}

export interface ShardFileDigest {
  path: string
  length: number
  /** Zero-padded piece hashes of the file. */
  pieces: Buffer
  /** Unpadded hash of its last piece; needed for a file that ends a shard. */
  tail?: Buffer
}

export interface BuiltShard extends BuiltTorrent {
  /** Index of the shard's first file in the content list, and how many files it holds. */
  first: number
  count: number
  bytes: number
}

/** One torrent per shard: the files of the range, padded as every dsync torrent is. */
export function buildShards(
  name: string, pieceLength: number, trackers: string[], files: ShardFileDigest[], starts: number[],
): BuiltShard[] {
  return starts.map((first, s) => {
    const end = s + 1 < starts.length ? starts[s + 1] : files.length
    const range = files.slice(first, end)
    const pieces = Buffer.concat(range.map(f => f.pieces))
    const last = range[range.length - 1]
    if (last.length % pieceLength !== 0) {
      if (!last.tail) throw new Error(`no unpadded last-piece hash for ${last.path}`)
      last.tail.copy(pieces, pieces.length - 20)
    }
    const layout = layoutFiles(range.map(f => ({ path: f.path, length: f.length })), pieceLength)
    const built = buildTorrent({ name, pieceLength, files: layout, pieces, trackers })
    return { ...built, first, count: range.length, bytes: range.reduce((sum, f) => sum + f.length, 0) }
  })
}

/**
 * The index torrent of a sharded repository: data.dsync, then each shard's .torrent file
 * (named by its infohash) in shard order. Its magnet link is the repository's, so a magnet
 * alone reaches data.dsync and every shard, all verified by the index's piece hashes.
 */
export function buildIndexTorrent(
  name: string, pieceLength: number, trackers: string[], manifest: Buffer | HashedPart, shards: BuiltTorrent[],
): BuiltTorrent {
  return buildIndexTorrentFrom(name, pieceLength, trackers, manifest, shards.map(s => ({ infoHash: s.infoHash, length: s.torrent.length, read: () => s.torrent })))
}

/** A shard .torrent the index holds, read when its turn comes. */
export interface ShardFile {
  infoHash: string
  length: number
  read?: () => Buffer
  /** Instead of `read`: its piece hashes, the file read as a stream (no buffer of its size). */
  hash?: (last: boolean) => { pieces: Buffer; tail?: Buffer }
}

/**
 * buildIndexTorrent with each shard file read only while it is hashed: every file of the index
 * starts on a piece boundary (BEP 47 pads), so its pieces are its own. At 1M files the shard
 * torrents are ~150 MB together; a client rebuilding the index holds one at a time.
 */
export function buildIndexTorrentFrom(
  name: string, pieceLength: number, trackers: string[], manifest: Buffer | HashedPart, shards: ShardFile[],
): BuiltTorrent {
  const head: IndexPart = Buffer.isBuffer(manifest)
    ? { path: MANIFEST_TORRENT_PATH, length: manifest.length, read: () => manifest }
    : { path: MANIFEST_TORRENT_PATH, length: manifest.length, hash: () => manifest }
  const parts: IndexPart[] = [head, ...shards.map(s => ({ path: shardTorrentPath(s.infoHash), length: s.length, read: s.read, hash: s.hash }))]
  const layout = layoutFiles(parts.map(p => ({ path: p.path, length: p.length })), pieceLength)
  const digests = parts.map((p, i) => {
    const last = i === parts.length - 1
    if (p.hash) return p.hash(last)
    const data = p.read!()
    if (data.length !== p.length) throw new Error(`${p.path}: ${data.length} bytes, ${p.length} expected`)
    return pieceHashes(data, pieceLength, last)
  })
  const pieces = Buffer.concat(digests.map(d => d.pieces))
  const last = digests[digests.length - 1]
  if (last.tail) last.tail.copy(pieces, pieces.length - 20)
  return buildTorrent({ name, pieceLength, files: layout, pieces, trackers })
}

/** A file of the index torrent: its bytes, or its piece hashes read from disk as a stream (`last`: it ends the torrent). */
interface IndexPart {
  path: string
  length: number
  read?: () => Buffer
  hash?: (last: boolean) => { pieces: Buffer; tail?: Buffer }
}

/** A part hashed already (data.dsync read from disk as a stream): its padded piece hashes, and the unpadded last one. */
export interface HashedPart {
  length: number
  pieces: Buffer
  tail?: Buffer
}

/** The path of a shard's .torrent inside the index torrent (and under the repository). */
export function shardTorrentPath(infoHash: string): string {
  return `${SHARD_TORRENT_DIR}/${infoHash}.torrent`
}

/** The infohash a shard .torrent's path names, or undefined for any other path. */
export function shardInfoHashOf(path: string): string | undefined {
  const m = /^\.dsync\/shards\/([0-9a-f]{40})\.torrent$/.exec(path)
  return m?.[1]
}

/**
 * The shard infohashes an index torrent names, in order; undefined when the torrent is a
 * one-torrent repository's (its files after data.dsync are content, not shard torrents).
 */
export function indexedShards(files: { path: string; pad: boolean }[]): string[] | undefined {
  const named: string[] = []
  for (let i = 1; i < files.length; i++) {
    if (files[i].pad) continue
    const ih = shardInfoHashOf(files[i].path)
    if (!ih) return undefined
    named.push(ih)
  }
  return named.length > 0 ? named : undefined
}
