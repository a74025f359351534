import { mkdirSync, readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { DsyncError, ExitCode, fsError } from '../errors.js'
import type { Manifest } from '../manifest/format.js'
import type { RepoFiles } from '../manifest/paths.js'
import { Downloader } from '../swarm/downloader.js'
import type { PeerConnection } from '../swarm/peer.js'
import type { Swarm } from '../swarm/swarm.js'
import { matchFileList, piecesFit, readTorrentWalked, type ExpectedFiles, type RunMatch } from '../torrent/file-list.js'
import { matchIndexToShards, matchShardsToManifest } from '../torrent/match.js'
import { fileSpans, type PieceMap, type PieceSpan } from '../torrent/piece-map.js'
import { readTorrentInfo, type TorrentInfo } from '../torrent/read.js'
import { shardTorrentPath } from '../torrent/shards.js'
import { writeFileAtomic } from '../util/atomic-write.js'
import { readFileInto } from '../util/read-file.js'
import { youngCollector } from '../util/release-memory.js'
import { EntryList } from './entry-list.js'
import type { Staging } from './staging.js'
import { transferFiles, watchDownload, type TransferProgress, type TransferResult } from './transfer.js'
import { traceMark } from '../swarm/trace.js'

/**
 * One shard of a sharded repository, as the client holds it (docs/SCALE.md, "Shards"): its
 * .torrent's bytes and where its files are, with no object per file (a 1M-file repository
 * has ~60 shards; their parsed file lists cost more than everything else the client keeps).
 */
export interface ClientShard {
  infoHash: string
  /** Its .torrent file, until `storeShards` has written it to DEST. */
  torrent?: Buffer
  /** The piece hashes (a view into `torrent`) until then; after, read again from DEST at the shard's turn. */
  pieces?: Buffer
  pieceLength: number
  /**
   * Its files: data.dsync's content files (type f, size > 0) in order, this shard's range of
   * them; the client's entries as row numbers (entry-list.ts), not a slice of a million objects.
   */
  files: EntryList
  /** Each file's offset in the shard's piece space (the pads between them are implied). */
  offsets: Float64Array
  totalLength: number
}

/** What a shard needs of a data.dsync content entry. */
export interface ContentFile {
  path: string
  size: number
  sha256?: Buffer
}

export interface ShardContext {
  /** The index torrent and its swarm, whose peers also seed every shard. */
  index: TorrentInfo
  indexMap: PieceMap
  swarm: Swarm
  stallMs: number
  from: string
}

/**
 * Where the shard torrents go as each one arrives (a run that holds DEST's lock and is not a
 * dry run): DEST/.dsync/shards/, named by infohash, so that the run never holds them all (147 MB
 * at 1M files). `written` lists the files this run created (a run refused before its fetch removes them).
 */
export interface ShardStore {
  written: string[]
}

/** The shard torrents' bytes, read one at a time: from memory (a dry run) or from DEST/.dsync/shards/. */
interface ShardBytes {
  read(s: number): Buffer
  /** The same bytes for one walk only: a stored shard's are read into one buffer that the next call reuses. */
  scan(s: number): Buffer
  lengths: number[]
  /** Stored: each ClientShard's torrent and piece hashes are read again when needed. */
  stored: boolean
}

/**
 * The shard torrents an index names: those DEST kept from its last sync (same infohash)
 * are read from DEST/.dsync/shards/, the rest fetched at once from the index's swarm, every
 * piece verified, each then checked against its infohash. Together the shards must be
 * exactly data.dsync's files, or nothing goes further. Each shard's files list is walked in
 * place against data.dsync's entries (`matchFileList`, as a host loads a generation); only
 * when that finds a difference is everything parsed, to name it. With `store`, each fetched
 * torrent is written to DEST/.dsync/shards/ as it completes and only one is in memory at a time.
 */
export async function loadShards(named: string[], files: RepoFiles, ctx: ShardContext, manifest: Manifest, manifestLength: number, store?: ShardStore): Promise<ClientShard[]> {
  const torrents = store ? await storedShardTorrents(named, files, ctx, store) : await shardTorrents(named, files, ctx)
  traceMark('shards-fetched')
  const pieceLength = manifest.header.pieceLength
  const content = manifest.entries.filter(e => e.type === 'f' && e.size > 0)
  const expected = expectedFiles(content)
  const shards: ClientShard[] = []
  let next = 0
  for (const [s, ih] of named.entries()) {
    const from = `${ctx.from} shard ${ih}`
    let run: RunMatch | undefined
    const torrent = torrents.scan(s)
    const info = readShard(from, () => readTorrentWalked(torrent, r => (run = matchFileList(r, pieceLength, expected, next, false)) !== undefined))
    if (info.infoHash !== ih) throw new DsyncError(ExitCode.badData, 'sync.badTorrent', { from, reason: `infohash ${info.infoHash}` })
    if (!run || !piecesFit(info, pieceLength, run)) explain(named, torrents, ctx, manifest, manifestLength)
    shards.push({
      infoHash: ih, torrent: torrents.stored ? undefined : torrent, pieces: torrents.stored ? undefined : info.pieces, pieceLength,
      files: EntryList.of(content, next, next + run.count), offsets: run.offsets, totalLength: run.totalLength,
    })
    next += run.count
  }
  const index = matchIndexToShards(ctx.index, named.map((ih, s) => ({ infoHash: ih, torrentLength: torrents.lengths[s] })), pieceLength, manifestLength)
  if (next !== content.length || typeof index === 'string') explain(named, torrents, ctx, manifest, manifestLength)
  return shards
}

/** The named shard torrents in memory: kept in DEST, or fetched from the index's swarm. */
async function shardTorrents(named: string[], files: RepoFiles, ctx: ShardContext): Promise<ShardBytes> {
  const torrents = named.map(ih => kept(files, ih))
  const missing = missingShards(named, ctx, s => torrents[s] !== undefined)
  if (missing.size > 0) await fetchIndexFiles(ctx, [...missing.keys()], (index, bytes) => { torrents[missing.get(index)!] = bytes })
  const read = (s: number) => torrents[s]!
  return { read, scan: read, lengths: torrents.map(t => t!.length), stored: false }
}

/** The named shard torrents on disk: each fetched one written to DEST/.dsync/shards/ as it completes. */
async function storedShardTorrents(named: string[], files: RepoFiles, ctx: ShardContext, store: ShardStore): Promise<ShardBytes> {
  const path = (s: number) => join(files.shards, `${named[s]}.torrent`)
  const lengths = named.map((_, s) => statSync(path(s), { throwIfNoEntry: false })?.size ?? -1)
  const missing = missingShards(named, ctx, s => lengths[s] >= 0)
  if (missing.size > 0) {
    try {
      mkdirSync(files.shards, { recursive: true })
    } catch (err) {
      throw fsError(err, files.shards, 'write')
    }
    await fetchIndexFiles(ctx, [...missing.keys()], (index, bytes) => {
      const s = missing.get(index)!
      // Verified piece by piece against the index torrent; its infohash is checked at its turn below.
      writeFileAtomic(path(s), bytes)
      store.written.push(path(s))
      lengths[s] = bytes.length
    }, true)
  }
  const read = (s: number) => {
    try {
      return readFileSync(path(s))
    } catch (err) {
      throw fsError(err, path(s), 'read')
    }
  }
  return { read, scan: scanner(path, Math.max(...lengths)), lengths, stored: true }
}

/**
 * Reads each stored shard torrent into one buffer of the largest one's size, for the walk.
 *
 * Why: a fresh buffer per shard (77 of 0.4-3.8 MB at 1M files), freed after its walk while
 * the walk's lasting allocations (each shard's offsets) were made beside it, left holes in
 * glibc's heap that it keeps resident: smaps of a 1M bootstrap showed that heap ([heap], where
 * glibc puts a freed-size buffer once a bigger one was unmapped) at 140 MiB beside 50-100 MiB
 * of ArrayBuffers, and 35 -> 76 MiB over the shard walk alone in process (docs/SCALE.md).
 */
function scanner(path: (s: number) => string, largest: number): (s: number) => Buffer {
  let buf: Buffer | undefined
  return s => {
    buf ??= Buffer.allocUnsafeSlow(largest)
    try {
      return readFileInto(path(s), buf)
    } catch (err) {
      throw fsError(err, path(s), 'read')
    }
  }
}

/** Index torrent file number -> shard number, for each shard DEST does not have. */
function missingShards(named: string[], ctx: ShardContext, have: (s: number) => boolean): Map<number, number> {
  const missing = new Map<number, number>()
  const indexByPath = new Map(ctx.indexMap.files.map((f, i) => [f.path, i]))
  named.forEach((ih, s) => {
    if (!have(s)) missing.set(indexByPath.get(shardTorrentPath(ih))!, s)
  })
  return missing
}

/**
 * Why the shards differ from data.dsync, found by the parsed check (an object per file:
 * only once the walk found a difference). Always throws.
 */
function explain(named: string[], torrents: ShardBytes, ctx: ShardContext, manifest: Manifest, manifestLength: number): never {
  const shapes = named.map((ih, s) => {
    const info = readShard(`${ctx.from} shard ${ih}`, () => readTorrentInfo(torrents.read(s)))
    if (info.infoHash !== ih) throw new DsyncError(ExitCode.badData, 'sync.badTorrent', { from: `${ctx.from} shard ${ih}`, reason: `infohash ${info.infoHash}` })
    return { ...info, torrentLength: torrents.lengths[s] }
  })
  const matched = matchShardsToManifest(ctx.index, shapes, manifest, manifestLength)
  const reason = typeof matched === 'string' ? matched : 'the shards do not match data.dsync byte for byte'
  throw new DsyncError(ExitCode.badData, 'sync.manifestMismatch', { from: ctx.from, reason })
}

/** data.dsync's content entries as the walk expects them: each path's bytes made when it is compared. */
function expectedFiles(content: readonly ContentFile[]): ExpectedFiles {
  let at = -1
  let end = 0
  // One buffer for every path, not a Buffer per file (1M of them at 1M files: garbage in glibc's heap, see scanner).
  let bytes = Buffer.allocUnsafeSlow(4096)
  const path = (i: number) => {
    if (i !== at) {
      const p = content[i].path
      if (p.length * 3 > bytes.length) bytes = Buffer.allocUnsafeSlow(p.length * 3)
      at = i
      end = bytes.write(p, 0, 'utf8')
    }
    return bytes
  }
  return { count: content.length, length: i => content[i].size, pathBuf: path, pathStart: () => 0, pathEnd: i => (path(i), end) }
}

/** A shard's piece map, made when its turn comes (one shard's files at a time). */
export function shardMap(shard: ClientShard): PieceMap {
  const P = shard.pieceLength
  const files = []
  for (let i = 0; i < shard.files.length; i++) {
    const f = shard.files.at(i)
    files.push({ path: f.path, length: f.size, offset: shard.offsets[i], firstPiece: shard.offsets[i] / P, pieceCount: Math.ceil(f.size / P) })
  }
  return { pieceLength: P, totalLength: shard.totalLength, pieceCount: Math.ceil(shard.totalLength / P), files }
}

function readShard(from: string, read: () => TorrentInfo): TorrentInfo {
  try {
    return read()
  } catch (err) {
    throw new DsyncError(ExitCode.badData, 'sync.badTorrent', { from, reason: (err as Error).message })
  }
}

/** A shard .torrent DEST kept from an earlier sync; its infohash is checked by the caller. */
function kept(files: RepoFiles, infoHash: string): Buffer | undefined {
  try {
    return readFileSync(join(files.shards, `${infoHash}.torrent`))
  } catch {
    return undefined
  }
}

/**
 * How the metadata (data.dsync, the shard torrents) is downloaded: each piece hashed on the
 * event loop as it arrives, not on the verifier thread.
 *
 * Why: the verifier thread takes a copy of each piece (a fresh 64 KiB buffer at the index
 * torrent's piece size) and a piece counts as received once it is queued there, so nothing
 * bounds the queue: at loopback speed on a busy machine the thread fell behind by ~100 MiB of
 * those copies while the 147 MB of shard torrents of a 1M-file repository came in. They are
 * below glibc's mmap threshold, so they went to its main heap, which keeps the pages resident
 * to the run's end (a 1M bootstrap's brk heap 37 -> 125 MiB over the shard fetch, then 128 MiB
 * through the transfer: docs/SCALE.md, "Bootstrap memory ... (h11m11)"). Hashed here, a
 * one-block piece is a view of the socket's buffer (no copy at all), the hashing (SHA-1 of
 * ~300 MB at 1M files: well under a second) paces the reads, and no worker thread is started.
 */
export const METADATA_DOWNLOAD = { verifyOffThread: false } as const

/**
 * Whole files of the index torrent (shard .torrent files), from every peer at once: each
 * handed to `done` when its last piece is verified (pieces are asked for in order, so only the
 * few files in flight are in memory at once).
 */
async function fetchIndexFiles(ctx: ShardContext, indexes: number[], done: (index: number, bytes: Buffer) => void, reuse = false): Promise<void> {
  const open = new Map<number, { bytes: Buffer; whole: Buffer; left: number }>()
  const spans = indexes.flatMap(i => fileSpans(ctx.indexMap, i))
  // `reuse`: `done` keeps nothing of the bytes (it writes them to disk), so a finished file's
  // buffer takes a later one: a few buffers of the largest size, not one per shard (see scanner).
  const spare: Buffer[] = []
  const largest = reuse ? Math.max(...indexes.map(i => ctx.indexMap.files[i].length)) : 0
  const received = youngCollector()
  const onPiece = (span: PieceSpan, data: Buffer) => {
    const length = ctx.indexMap.files[span.file].length
    let f = open.get(span.file)
    if (!f) {
      const whole = reuse ? spare.pop() ?? Buffer.allocUnsafeSlow(largest) : Buffer.alloc(length)
      open.set(span.file, f = { bytes: whole.subarray(0, length), whole, left: length })
    }
    data.copy(f.bytes, span.fileOffset, 0, span.dataLength)
    f.left -= span.dataLength
    received(span.dataLength)
    if (f.left > 0) return
    open.delete(span.file)
    done(span.file, f.bytes)
    if (reuse) spare.push(f.whole)
  }
  const d = new Downloader({ pieces: spans, hashes: ctx.index.pieces, onPiece, ...METADATA_DOWNLOAD })
  const onPeer = (peer: PeerConnection) => { peer.ready().then(() => d.addPeer(peer), (err: Error) => peer.close(err.message)) }
  ctx.swarm.on('peer', onPeer)
  for (const p of ctx.swarm.connected) onPeer(p)
  try {
    await watchDownload(d, { swarm: ctx.swarm, stallMs: ctx.stallMs, infoHash: ctx.index.infoHash, describe: () => 'shard torrents' })
  } finally {
    ctx.swarm.off('peer', onPeer)
    // The index swarm's peers live on to the plan, and requests of theirs still in flight (endgame
    // copies) keep `onPiece` and so these buffers: up to a few of the largest shard's size each.
    spare.length = 0
    open.clear()
  }
}

export interface ShardTransferOptions {
  shards: ClientShard[]
  /**
   * A shard's file's content number when it is to be fetched, else -1: asked of each file as its
   * shard's turn comes (no map of every path to fetch). With `metaIds` the number is the
   * content's in the plan's fetch list (Staging.metaIdAt), else only its sign counts.
   */
  wanted: (file: ContentFile) => number
  metaIds?: boolean
  staging: Staging
  /** DEST/.dsync/shards/: where `storeShards` put the shard torrents. */
  dir: string
  /** A swarm for one shard's infohash on the repository's hosts (and trackers). */
  open: (infoHash: string) => { swarm: Swarm; stop: () => void }
  onProgress?: (p: TransferProgress) => void
  onWarning?: (message: string) => void
}

/**
 * Fetches files shard by shard: each shard is its own swarm (its own infohash) on the same
 * hosts. Shards with nothing wanted are not contacted. Only the shard being fetched has its
 * piece map and file table made.
 */
export async function transferFromShards(opts: ShardTransferOptions): Promise<TransferResult> {
  const total: TransferResult = { bytesReceived: 0, bytesPerPeer: {}, reusedPieces: 0 }
  let bytesTotal = 0
  let filesTotal = 0
  // Each file's content number, asked once here for the totals and kept for its shard's turn (4
  // bytes a file; asked again there, the look-up and the digest view it makes were ~0.15 s of a
  // 200,000-file bootstrap's event loop, h12c22).
  const wantedIds = opts.shards.map(shard => {
    const ids = new Int32Array(shard.files.length)
    let i = 0
    for (const f of shard.files) {
      const id = ids[i++] = opts.wanted(f)
      if (id < 0) continue
      bytesTotal += f.size
      filesTotal++
    }
    return ids
  })
  let bytesBefore = 0
  let filesBefore = 0
  for (let s = 0; s < opts.shards.length; s++) {
    const shard = opts.shards[s]
    const ids = wantedIds[s]
    wantedIds[s] = new Int32Array(0)
    const files = new Map<number, string>()
    const metaIds = opts.metaIds ? new Int32Array(shard.files.length).fill(-1) : undefined
    for (let i = 0; i < shard.files.length; i++) {
      const id = ids[i]
      if (id < 0) continue
      const f = shard.files.at(i)
      // The hex name (staging's) only for the files this shard fetches, and once.
      files.set(i, f.sha256!.toString('hex'))
      if (metaIds) metaIds[i] = id
    }
    if (files.size === 0) continue
    traceMark('shard-transfer')
    const { swarm, stop } = opts.open(shard.infoHash)
    try {
      const r = await transferFiles({
        swarm, map: shardMap(shard), hashes: shard.pieces ?? storedPieces(opts.dir, shard), staging: opts.staging, files, metaIds, onWarning: opts.onWarning, infoHash: shard.infoHash,
        onProgress: p => opts.onProgress?.({ ...p, bytesDone: bytesBefore + p.bytesDone, bytesTotal, filesDone: filesBefore + p.filesDone, filesTotal }),
      })
      total.bytesReceived += r.bytesReceived
      total.reusedPieces += r.reusedPieces
      for (const [peer, n] of Object.entries(r.bytesPerPeer)) total.bytesPerPeer[peer] = (total.bytesPerPeer[peer] ?? 0) + n
      bytesBefore += r.bytesReceived
      filesBefore += files.size
    } finally {
      stop()
    }
  }
  return total
}

/**
 * Before the plan (DEST's lock held, not on a dry run) the shard torrents go to
 * DEST/.dsync/shards/ rather than at the commit, and leave memory: at 1M files that is 147 MB
 * of torrents (and 20 MB of piece hashes, read again from the file when the shard's turn
 * comes). A run killed later leaves them there, named by infohash: the next run reads them
 * instead of fetching them, and a host serving DEST meanwhile reads only the shards its own
 * index names. Returns the files written (a run refused before its fetch removes them).
 */
export function storeShards(files: RepoFiles, shards: ClientShard[]): string[] {
  try {
    mkdirSync(files.shards, { recursive: true })
  } catch (err) {
    throw fsError(err, files.shards, 'write')
  }
  const written: string[] = []
  for (const s of shards) {
    if (!s.torrent) continue
    const file = join(files.shards, `${s.infoHash}.torrent`)
    // A file named by its infohash with the right length was checked against that infohash when read.
    if (statSync(file, { throwIfNoEntry: false })?.size !== s.torrent.length) {
      writeFileAtomic(file, s.torrent)
      written.push(file)
    }
    s.pieces = undefined
    s.torrent = undefined
  }
  return written
}

/** A stored shard torrent's piece hashes, read when its turn comes; it must still be the torrent checked before. */
function storedPieces(dir: string, shard: ClientShard): Buffer {
  const file = join(dir, `${shard.infoHash}.torrent`)
  let bytes: Buffer
  try {
    bytes = readFileSync(file)
  } catch (err) {
    throw fsError(err, file, 'read')
  }
  const info = readShard(file, () => readTorrentWalked(bytes, () => false))
  if (info.infoHash !== shard.infoHash || !piecesFit(info, shard.pieceLength, { count: shard.files.length, offsets: shard.offsets, totalLength: shard.totalLength })) {
    throw new DsyncError(ExitCode.badData, 'sync.badTorrent', { from: file, reason: `infohash ${info.infoHash}` })
  }
  return info.pieces
}

/** After the commit: DEST keeps this generation's shard torrents (a host re-serving DEST needs them), and no other. */
export function keepShards(files: RepoFiles, shards: ClientShard[]): void {
  storeShards(files, shards)
  const keep = new Set(shards.map(s => `${s.infoHash}.torrent`))
  for (const name of readdirSync(files.shards)) {
    if (!keep.has(name) && /^[0-9a-f]{40}\.torrent$/.test(name)) unlinkSync(join(files.shards, name))
  }
}

/** Removes shard torrents DEST kept, when the repository is one torrent again. */
export function dropShards(files: RepoFiles): void {
  let names: string[]
  try {
    names = readdirSync(files.shards)
  } catch {
    return
  }
  for (const name of names) if (/^[0-9a-f]{40}\.torrent$/.test(name)) unlinkSync(join(files.shards, name))
}
