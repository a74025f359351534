import { mkdirSync, readdirSync, readFileSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { DsyncError, ExitCode, fsError } from '../errors.js'
import type { Manifest } from '../manifest/format.js'
import type { RepoFiles } from '../manifest/paths.js'
import { Downloader } from '../swarm/downloader.js'
import type { PeerConnection } from '../swarm/peer.js'
import type { Swarm } from '../swarm/swarm.js'
import { matchShardsToManifest } from '../torrent/match.js'
import { fileSpans, pieceMap, type PieceMap } from '../torrent/piece-map.js'
import { readTorrentInfo, type TorrentInfo } from '../torrent/read.js'
import { shardTorrentPath } from '../torrent/shards.js'
import { writeFileAtomic } from '../util/atomic-write.js'
import type { Staging } from './staging.js'
import { layoutOf } from './torrent-check.js'
import { transferFiles, watchDownload, type TransferProgress, type TransferResult } from './transfer.js'

/** One shard of a sharded repository, as the client holds it (docs/SCALE.md, "Shards"). */
export interface ClientShard {
  infoHash: string
  torrent: Buffer
  info: TorrentInfo
  map: PieceMap
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
 * The shard torrents an index names: those DEST kept from its last sync (same infohash)
 * are read from DEST/.dsync/shards/, the rest fetched at once from the index's swarm, every
 * piece verified, each then checked against its infohash. Together the shards must be
 * exactly data.dsync's files, or nothing goes further.
 */
export async function loadShards(named: string[], files: RepoFiles, ctx: ShardContext, manifest: Manifest, manifestLength: number): Promise<ClientShard[]> {
  const torrents = named.map(ih => kept(files, ih))
  const missing = new Map<number, number>()
  const indexByPath = new Map(ctx.indexMap.files.map((f, i) => [f.path, i]))
  named.forEach((ih, s) => {
    if (!torrents[s]) missing.set(indexByPath.get(shardTorrentPath(ih))!, s)
  })
  if (missing.size > 0) {
    const fetched = await fetchIndexFiles(ctx, [...missing.keys()])
    for (const [index, s] of missing) torrents[s] = fetched.get(index)!
  }
  const shards = named.map((ih, s): ClientShard => {
    const info = readShard(torrents[s]!, `${ctx.from} shard ${ih}`)
    if (info.infoHash !== ih) throw new DsyncError(ExitCode.badData, 'sync.badTorrent', { from: `${ctx.from} shard ${ih}`, reason: `infohash ${info.infoHash}` })
    return { infoHash: ih, torrent: torrents[s]!, info, map: pieceMap(layoutOf(info), info.pieceLength) }
  })
  const shapes = shards.map(s => ({ ...s.info, torrentLength: s.torrent.length }))
  const matched = matchShardsToManifest(ctx.index, shapes, manifest, manifestLength)
  if (typeof matched === 'string') throw new DsyncError(ExitCode.badData, 'sync.manifestMismatch', { from: ctx.from, reason: matched })
  return shards
}

function readShard(torrent: Buffer, from: string): TorrentInfo {
  try {
    return readTorrentInfo(torrent)
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

/** Whole files of the index torrent (shard .torrent files) into memory, from every peer at once. */
async function fetchIndexFiles(ctx: ShardContext, indexes: number[]): Promise<Map<number, Buffer>> {
  const out = new Map(indexes.map(i => [i, Buffer.alloc(ctx.indexMap.files[i].length)]))
  const spans = indexes.flatMap(i => fileSpans(ctx.indexMap, i))
  const d = new Downloader({ pieces: spans, hashes: ctx.index.pieces, onPiece: (span, data) => data.copy(out.get(span.file)!, span.fileOffset) })
  const onPeer = (peer: PeerConnection) => { peer.ready().then(() => d.addPeer(peer), (err: Error) => peer.close(err.message)) }
  ctx.swarm.on('peer', onPeer)
  for (const p of ctx.swarm.connected) onPeer(p)
  try {
    await watchDownload(d, { swarm: ctx.swarm, stallMs: ctx.stallMs, infoHash: ctx.index.infoHash, describe: () => 'shard torrents' })
  } finally {
    ctx.swarm.off('peer', onPeer)
  }
  return out
}

export interface ShardTransferOptions {
  shards: ClientShard[]
  /** Repository path -> SHA-256 hex (the staging name) of every file to fetch. */
  wanted: Map<string, string>
  staging: Staging
  /** A swarm for one shard's infohash on the repository's hosts (and trackers). */
  open: (infoHash: string) => { swarm: Swarm; stop: () => void }
  onProgress?: (p: TransferProgress) => void
  onWarning?: (message: string) => void
}

/**
 * Fetches files shard by shard: each shard is its own swarm (its own infohash) on the same
 * hosts. Shards with nothing wanted are not contacted.
 */
export async function transferFromShards(opts: ShardTransferOptions): Promise<TransferResult> {
  const total: TransferResult = { bytesReceived: 0, bytesPerPeer: {}, reusedPieces: 0 }
  const work = opts.shards.map(shard => {
    const files = new Map<number, string>()
    shard.map.files.forEach((f, i) => {
      const hex = opts.wanted.get(f.path)
      if (hex !== undefined) files.set(i, hex)
    })
    return { shard, files }
  }).filter(w => w.files.size > 0)
  const bytesTotal = work.reduce((sum, w) => sum + [...w.files.keys()].reduce((s, i) => s + w.shard.map.files[i].length, 0), 0)
  const filesTotal = work.reduce((sum, w) => sum + w.files.size, 0)
  let bytesBefore = 0
  let filesBefore = 0
  for (const { shard, files } of work) {
    const { swarm, stop } = opts.open(shard.infoHash)
    try {
      const r = await transferFiles({
        swarm, map: shard.map, hashes: shard.info.pieces, staging: opts.staging, files, onWarning: opts.onWarning, infoHash: shard.infoHash,
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

/** After the commit: DEST keeps this generation's shard torrents (a host re-serving DEST needs them). */
export function keepShards(files: RepoFiles, shards: ClientShard[]): void {
  try {
    mkdirSync(files.shards, { recursive: true })
  } catch (err) {
    throw fsError(err, files.shards, 'write')
  }
  const keep = new Set(shards.map(s => `${s.infoHash}.torrent`))
  // A file named by its infohash with the right length was checked against that infohash when read.
  for (const s of shards) if (kept(files, s.infoHash)?.length !== s.torrent.length) writeFileAtomic(join(files.shards, `${s.infoHash}.torrent`), s.torrent)
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
