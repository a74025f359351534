import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { fsError } from '../errors.js'
import { buildTorrent, magnetLink, torrentHead, wrapInfo } from '../torrent/build.js'
import { encodeInfoRows, encodeTorrentRows, padEntryByteLength } from '../torrent/encode-info.js'
import { layoutFiles } from '../torrent/layout.js'
import { readTorrentInfo } from '../torrent/read.js'
import { buildIndexTorrentFrom, buildShards, shardInfoHashOf, type HashedPart, type ShardFileDigest } from '../torrent/shards.js'
import type { DurableBatch } from '../util/durable-batch.js'
import { contentPath, contentTable, type ContentTable } from './content-table.js'
import { hashBuffer } from './hash-file.js'
import { indexLines } from './manifest-lines.js'
import { MANIFEST_TORRENT_PATH, type RepoFiles } from './paths.js'
import type { ShardOut } from './shard-rebuild.js'

/** The previous generation's outputs, checked and kept as they are. */
export type UnchangedOutputs = Omit<WrittenOutputs, 'changed'>

export interface ShardSummary {
  infoHash: string
  /** The shard's .torrent on disk. */
  file: string
  files: number
  bytes: number
  /** Encoded by this run; false: the previous generation's file, kept as it was (gendsync --changed). */
  built: boolean
}

export interface OutputsInput {
  name: string
  trackers: string[]
  manifest: Buffer
  /** data.dsync as this run read it under the lock (undefined: there was none). */
  previous: Buffer | undefined
  pieceLength: number
  /** The torrent's content files (size > 0) in data.dsync order, with their digests. */
  content: TorrentContent
  /** Shard starts (shardStarts); `[0]`: one torrent. */
  starts: number[]
  /** Files already in the batch (EarlyOutputs). */
  staged?: ReadonlySet<string>
}

/**
 * The torrent's content files by index: a list of digest objects (a hinted run's few
 * hundred), or tables a full run filled (hash-table.ts) that are never made into an object
 * per file.
 */
export interface TorrentContent {
  count: number
  length(i: number): number
  /** Zero-padded piece hashes of files [first, end) concatenated, in a buffer of the caller's own. */
  pieces(first: number, end: number): Buffer
  /** Unpadded hash of file i's last piece, when it has one. */
  tail(i: number): Buffer | undefined
  /** Every file as an object (one torrent of at most 32,768 files, or the fallback below). */
  list(): ShardFileDigest[]
}

export function listContent(files: ShardFileDigest[]): TorrentContent {
  return {
    count: files.length,
    length: i => files[i].length,
    pieces: (first, end) => Buffer.concat(files.slice(first, end).map(f => f.pieces)),
    tail: i => files[i].tail,
    list: () => files,
  }
}

export interface WrittenOutputs {
  /** False when data.dsync, the torrents and the magnet link were already these. */
  changed: boolean
  infoHash: string
  magnet: string
  shards?: ShardSummary[]
}

/**
 * Writes a generation's outputs into `batch` (durable-batch.ts): data.dsync, then the shard
 * torrents (only those not on disk already: a shard's file name is its infohash), then the
 * repository's .torrent (the one torrent, or the index of a sharded repository), then the
 * magnet link, each atomically, renamed in that order when the caller commits; shard files
 * no longer named are removed after. data.dsync goes first so a host that reloads in between
 * finds a torrent that does not match and keeps the previous generation.
 */
export function writeOutputs(files: RepoFiles, input: OutputsInput, batch: DurableBatch): WrittenOutputs {
  const expect = input.starts.length === 1 ? undefined : shardSizes(input.content, input.starts)
  const sameManifest = input.previous?.equals(input.manifest) ?? false
  const unchanged = sameManifest ? unchangedOutputs(files, input, expect) : undefined
  if (unchanged) return { changed: false, ...unchanged }
  if (input.starts.length === 1) {
    const { torrent, infoHash } = singleTorrent(input)
    const magnet = magnetLink(infoHash, input.name, input.trackers)
    if (!input.staged?.has(files.manifest)) batch.add(files.manifest, input.manifest)
    batch.add(files.torrent, torrent)
    batch.add(files.magnet, magnet + '\n')
    batch.then(() => removeStaleShards(files, new Set()))
    return { changed: true, infoHash, magnet }
  }
  return writeSharded(files, input, shardsFromManifest(input), sameManifest, batch)
}

/**
 * buildShards' torrents, encoded from data.dsync's bytes (content-table.ts) instead of a
 * layout object and strings per file: the same bytes (test/torrent.test.ts checks the writer
 * against encodeInfo), a fraction of the time and garbage at 200k files.
 */
function shardsFromManifest(input: OutputsInput): ShardOut[] {
  const pending = encodeShardInfos(input.name, input.pieceLength, input.manifest, input.content, input.starts)
  if (!pending) return buildShards(input.name, input.pieceLength, input.trackers, input.content.list(), input.starts).map(s => ({ ...s, built: true }))
  return sealShards(pending, input.content, input.pieceLength, input.trackers)
}

/** A shard's info dict encoded before its piece hashes are all known: they go at `piecesAt`. */
export interface PendingShard {
  info: Buffer
  piecesAt: number
  first: number
  end: number
  bytes: number
  /** The whole .torrent, `info` inside it, when it was encoded with its head (encodeShardInfos' `whole`). */
  torrent?: Buffer
}

/**
 * Each shard's info dict, its paths and lengths taken from data.dsync's bytes (whose SHA-256s
 * may still be placeholders: a full gendsync encodes these while its files are hashed), its
 * pieces as they are now. Undefined when data.dsync's content files are not `content`'s.
 * `made`: the content table of `manifest`, when the caller made it already. `whole`: each
 * content file's entry bytes (TableCosts' `entry`) and the trackers: each shard is then encoded
 * as its whole .torrent in a buffer of the right size (encodeTorrentRows), not grown and copied.
 */
export function encodeShardInfos(
  name: string, pieceLength: number, manifest: Buffer, content: TorrentContent, starts: number[], made?: ContentTable,
  whole?: { entry: Float64Array; trackers: string[] },
): PendingShard[] | undefined {
  const lines = made ? made.lines : indexLines(manifest)
  const table = made ?? (typeof lines === 'string' ? undefined : contentTable(lines))
  if (!table || table.count !== content.count) return undefined
  const head = whole && torrentHead(whole.trackers)
  return starts.map((first, s) => {
    const end = s + 1 < starts.length ? starts[s + 1] : content.count
    const pieces = content.pieces(first, end)
    const pathAt = (i: number) => contentPath(table, first + i)
    const lengthAt = (i: number) => table.length[first + i]
    let bytes = 0
    for (let i = first; i < end; i++) bytes += table.length[i]
    if (!whole || !head) {
      const info = encodeInfoRows(end - first, pathAt, lengthAt, name, pieceLength, pieces)
      return { info, piecesAt: info.length - 1 - pieces.length, first, end, bytes }
    }
    let entryBytes = 0
    let longest = 0
    for (let i = first; i < end; i++) {
      entryBytes += whole.entry[i]
      const rest = table.length[i] % pieceLength
      if (rest !== 0 && i < end - 1) entryBytes += padEntryByteLength(pieceLength - rest)
      longest = Math.max(longest, table.pathTo[i] - table.pathFrom[i])
    }
    const { torrent, info } = encodeTorrentRows(end - first, pathAt, lengthAt, name, pieceLength, pieces, head, entryBytes, longest)
    return { info, torrent, piecesAt: info.length - 1 - pieces.length, first, end, bytes }
  })
}

/** The shard torrents, their piece hashes (the last one unpadded) written into the info dicts. */
export function sealShards(pending: PendingShard[], content: TorrentContent, pieceLength: number, trackers: string[]): ShardOut[] {
  return pending.map(p => {
    const pieces = content.pieces(p.first, p.end)
    if (content.length(p.end - 1) % pieceLength !== 0) {
      const tail = content.tail(p.end - 1)
      if (!tail) throw new Error(`no unpadded last-piece hash for content file ${p.end - 1}`)
      tail.copy(pieces, pieces.length - 20)
    }
    pieces.copy(p.info, p.piecesAt)
    const built = p.torrent ? { torrent: p.torrent, infoHash: createHash('sha1').update(p.info).digest('hex') } : wrapInfo(p.info, trackers)
    return { ...built, built: true, count: p.end - p.first, bytes: p.bytes }
  })
}

export interface ShardedOutputsInput {
  name: string
  trackers: string[]
  manifest: Buffer
  previous: Buffer | undefined
  pieceLength: number
  /** Every shard in order: built now, or the previous file kept (shard-rebuild.ts). */
  shards: ShardOut[]
  /** Files already in the batch (EarlyOutputs). */
  staged?: ReadonlySet<string>
  /** data.dsync's piece hashes, when the run has them already (the index torrent hashes it otherwise). */
  listPieces?: HashedPart
}

/**
 * A hinted run's outputs put into the batch as soon as each is made: data.dsync after the
 * splice, each rebuilt shard torrent as it is encoded. Their writes and fsyncs (~60 MB at 200k
 * files, ~0.3 s of this disk) then run on libuv's threads while the main thread builds the
 * rest, instead of all starting after the index torrent. The order of the renames is the one
 * writeSharded gives (data.dsync, shards, index, magnet); writeOutputs and writeShardOutputs
 * skip what is in `staged`. A run that falls back to a full one drops them (DurableBatch.dropFrom).
 */
export class EarlyOutputs {
  readonly staged = new Set<string>()
  private dirMade = false

  constructor(private readonly files: RepoFiles, private readonly batch: DurableBatch, private readonly previous: Buffer | undefined) {}

  manifest(manifest: Buffer): void {
    if (this.previous?.equals(manifest)) return
    this.add(this.files.manifest, manifest)
  }

  shard(shard: ShardOut): void {
    if (!shard.built) return
    if (!this.dirMade) shardsDir(this.files)
    this.dirMade = true
    const file = join(this.files.shards, `${shard.infoHash}.torrent`)
    if (!this.staged.has(file) && !holds(file, shard.torrent)) this.add(file, shard.torrent)
  }

  private add(file: string, data: Buffer): void {
    this.batch.add(file, data)
    this.staged.add(file)
  }
}

function shardsDir(files: RepoFiles): void {
  try {
    mkdirSync(files.shards, { recursive: true })
  } catch (err) {
    throw fsError(err, files.shards, 'write')
  }
}

/** writeOutputs for a sharded generation whose shard torrents are already made (gendsync --changed). */
export function writeShardOutputs(files: RepoFiles, input: ShardedOutputsInput, batch: DurableBatch): WrittenOutputs {
  const sameManifest = input.previous?.equals(input.manifest) ?? false
  const unchanged = sameManifest ? unchangedOutputs(files, input, input.shards) : undefined
  if (unchanged) return { changed: false, ...unchanged }
  return writeSharded(files, input, input.shards, sameManifest, batch)
}

function writeSharded(
  files: RepoFiles, input: ShardedOutputsInput | OutputsInput, shards: ShardOut[], sameManifest: boolean, batch: DurableBatch,
): WrittenOutputs {
  const listPieces = 'listPieces' in input ? input.listPieces : undefined
  // A hinted run's shards carry their piece hashes in the index, mostly the previous index's (shard-rebuild.ts).
  const parts = shards.map(s => ({ infoHash: s.infoHash, length: s.torrent.length, read: () => s.torrent, hash: s.indexPieces && (() => s.indexPieces!) }))
  const index = buildIndexTorrentFrom(input.name, input.pieceLength, input.trackers, listPieces ?? input.manifest, parts)
  const magnet = magnetLink(index.infoHash, input.name, input.trackers)
  const staged = input.staged
  if (!sameManifest && !staged?.has(files.manifest)) batch.add(files.manifest, input.manifest)
  shardsDir(files)
  const summaries = shards.map(s => {
    const file = join(files.shards, `${s.infoHash}.torrent`)
    if (s.built && !staged?.has(file) && !holds(file, s.torrent)) batch.add(file, s.torrent)
    return { infoHash: s.infoHash, file, files: s.count, bytes: s.bytes, built: s.built }
  })
  batch.add(files.torrent, index.torrent)
  batch.add(files.magnet, magnet + '\n')
  batch.then(() => removeStaleShards(files, new Set(shards.map(s => s.infoHash))))
  return { changed: true, infoHash: index.infoHash, magnet, shards: summaries }
}

/** Files and bytes of each shard, in order (what unchangedOutputs expects of a sharded generation). */
export function shardSizes(content: Pick<TorrentContent, 'count' | 'length'>, starts: number[]): { count: number; bytes: number }[] {
  return starts.map((first, s) => {
    const end = s + 1 < starts.length ? starts[s + 1] : content.count
    let bytes = 0
    for (let i = first; i < end; i++) bytes += content.length(i)
    return { count: end - first, bytes }
  })
}

function singleTorrent(input: OutputsInput) {
  const content = input.content.list()
  const layout = layoutFiles(
    [{ path: MANIFEST_TORRENT_PATH, length: input.manifest.length }, ...content.map(f => ({ path: f.path, length: f.length }))],
    input.pieceLength,
  )
  const digests = [hashBuffer(input.manifest, input.pieceLength), ...content]
  const pieces = Buffer.concat(digests.map(d => d.pieces))
  // The torrent's final piece is short, not padded: it takes the unpadded hash.
  const last = digests[digests.length - 1]
  if (last.tail) last.tail.copy(pieces, pieces.length - 20)
  return buildTorrent({ name: input.name, pieceLength: input.pieceLength, files: layout, pieces, trackers: input.trackers })
}

/**
 * The torrent is a function of data.dsync, the name and the trackers; the magnet link names
 * all three. Same data.dsync and same magnet link: the torrent on disk is this one, and a
 * sharded repository's shard files must all be there too. Anything else: rebuild.
 */
export function unchangedOutputs(
  files: RepoFiles, input: { name: string; trackers: string[] }, expect: { count: number; bytes: number }[] | undefined,
): UnchangedOutputs | undefined {
  let text: string
  let torrent: Buffer
  try {
    text = readFileSync(files.magnet, 'utf8')
    torrent = readFileSync(files.torrent)
  } catch {
    return undefined
  }
  const hash = /^magnet:\?xt=urn:btih:([0-9a-f]{40})&/.exec(text)?.[1]
  if (!hash || text !== magnetLink(hash, input.name, input.trackers) + '\n' || torrent.length === 0) return undefined
  if (!expect) return { infoHash: hash, magnet: text.trim() }
  let named: string[]
  try {
    const info = readTorrentInfo(torrent)
    if (info.infoHash !== hash) return undefined
    named = info.files.filter(f => !f.pad).slice(1).map(f => shardInfoHashOf(f.path) ?? '')
  } catch {
    return undefined
  }
  if (named.length !== expect.length) return undefined
  const shards: ShardSummary[] = []
  for (let s = 0; s < named.length; s++) {
    const file = join(files.shards, `${named[s]}.torrent`)
    if (named[s] === '' || !isTorrentOf(file, named[s])) return undefined
    shards.push({ infoHash: named[s], file, files: expect[s].count, bytes: expect[s].bytes, built: false })
  }
  return { infoHash: hash, magnet: text.trim(), shards }
}

/**
 * Shard files the new index no longer names, removed side by side on libuv's threads: a hinted
 * run at 200k files replaces ~14 shard files of ~2 MB, whose unlinks (freeing their blocks)
 * took ~30 ms in turn on the main thread, after the renames.
 */
async function removeStaleShards(files: RepoFiles, keep: Set<string>): Promise<void> {
  let names: string[]
  try {
    names = readdirSync(files.shards)
  } catch {
    return
  }
  const stale = names.filter(name => {
    const ih = /^([0-9a-f]{40})\.torrent$/.exec(name)?.[1]
    return ih !== undefined && !keep.has(ih)
  })
  await Promise.all(stale.map(name => unlink(join(files.shards, name)).catch(err => {
    throw fsError(err, join(files.shards, name), 'write')
  })))
}

/** True when `file` holds exactly these bytes (a damaged file of the right name is rewritten). */
function holds(file: string, data: Buffer): boolean {
  try {
    return readFileSync(file).equals(data)
  } catch {
    return false
  }
}

/** True when `file` is a .torrent whose info dict hashes to `infoHash` (its name): one SHA-1, no decoding. */
function isTorrentOf(file: string, infoHash: string): boolean {
  try {
    const buf = readFileSync(file)
    const at = buf.indexOf('4:infod')
    return at > 0 && createHash('sha1').update(buf.subarray(at + 6, buf.length - 1)).digest('hex') === infoHash
  } catch {
    return false
  }
}
