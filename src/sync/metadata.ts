import { STALL_MS } from '../config/defaults.js'
import { DsyncError, ExitCode } from '../errors.js'
import { sha256Hex } from '../generation/delta.js'
import { parseManifest, type Manifest } from '../manifest/format.js'
import { MANIFEST_TORRENT_PATH, repoFiles, type RepoFiles } from '../manifest/paths.js'
import { Downloader } from '../swarm/downloader.js'
import type { PeerConnection } from '../swarm/peer.js'
import type { Swarm } from '../swarm/swarm.js'
import { matchTorrentToManifest } from '../torrent/match.js'
import { indexedShards } from '../torrent/shards.js'
import { fileSpans, pieceMap, type PieceMap } from '../torrent/piece-map.js'
import type { TorrentInfo } from '../torrent/read.js'
import { openSwarm, type SwarmSession } from './open-swarm.js'
import { mustMatch } from './record-gate.js'
import { loadShards, type ClientShard } from './shards.js'
import { TORRENT_CAP } from './source.js'
import { layoutOf, parseTorrent } from './torrent-check.js'
import { pieceVerifies, watchDownload } from './transfer.js'
import type { PullContext, PullOptions } from './types.js'
import { readOrUndefined } from '../util/read-file.js'

// Kept importable from here (other stages read their files with it); it lives in a small module
// so that the no-change check can use it without loading the fetch machinery.
export { readOrUndefined }

// Stage 2, metadata (the full route): the repository torrent, then data.dsync as its first
// file, checked against the torrent and the signed record. src/sync/delta-route.ts is the
// other way to the same data.dsync.

export interface TorrentStage {
  torrent: Buffer
  info: TorrentInfo
}

export interface ManifestStage {
  map: PieceMap & { infoHash: string }
  files: RepoFiles
  manifest: Manifest
  manifestBytes: Buffer
  /** DEST's own data.dsync when it has a valid one (the plan trusts what it vouches for). */
  previous?: Manifest
  /** DEST's data.dsync is already this generation's. */
  sameGeneration: boolean
  /** A sharded repository: the torrent is its index, the files are in these shards. */
  shards?: ClientShard[]
}

/**
 * The torrent: over HTTP from a host when one offers it (a refused torrent then leaves no
 * peer dialled), else BEP 9 from the swarm. A torrent naming trackers when no source did
 * reopens the swarm with them (`session.net` is replaced).
 */
export async function torrentStage(ctx: PullContext, session: { net: SwarmSession }, fromHost: Buffer | undefined): Promise<TorrentStage> {
  const { opts, resolved } = ctx
  const infoHash = resolved[0].infoHash
  const torrent = fromHost ?? await metadataFromPeers(session.net.swarm, infoHash)
  const info = parseTorrent(torrent, resolved[0].source, infoHash)
  if (info.trackers.length > 0 && (opts.trackers ?? []).length + resolved.flatMap(r => r.trackers).length === 0) {
    session.net.stop()
    session.net = openSwarm(ctx, infoHash, info.trackers)
  }
  return { torrent, info }
}

/** data.dsync: DEST's own when it is already this generation's, else fetched from the swarm. */
export async function manifestStage(ctx: PullContext, swarm: Swarm, { info }: TorrentStage): Promise<ManifestStage> {
  const { opts, resolved, record } = ctx
  const map = { ...pieceMap(layoutOf(info), info.pieceLength), infoHash: info.infoHash }
  const files = repoFiles(opts.dest, info.name)
  const previousBytes = readOrUndefined(files.manifest)
  const sameGeneration = previousBytes !== undefined && previousBytes.length === map.files[0].length &&
    fileSpans(map, 0).every(s => pieceVerifies(previousBytes.subarray(s.fileOffset, s.fileOffset + s.dataLength), s, info.pieces))
  const manifestBytes = sameGeneration ? previousBytes : await fetchManifest(swarm, map, info.pieces, opts)
  if (record) mustMatch(resolved[0].source, 'data.dsync', sha256Hex(manifestBytes), record.manifest.sha256)
  const manifest = parseManifest(manifestBytes, `${resolved[0].source} data.dsync`)
  // A sharded repository's torrent is its index: data.dsync and the shard torrents.
  const named = indexedShards(info.files)
  if (named && record) mustMatch(resolved[0].source, 'shard list', named.join(' '), record.shards.join(' '))
  const shards = named && await loadShards(named, files, { index: info, indexMap: map, swarm, stallMs: STALL_MS, from: resolved[0].source }, manifest, manifestBytes.length)
  const matched = shards ? [] : matchTorrentToManifest(info, manifest, manifestBytes.length)
  if (typeof matched === 'string') throw new DsyncError(ExitCode.badData, 'sync.manifestMismatch', { from: resolved[0].source, reason: matched })
  const previous = previousBytes && !sameGeneration ? tryParse(previousBytes, files.manifest) : sameGeneration ? manifest : undefined
  return { map, files, manifest, manifestBytes, previous, sameGeneration, shards: shards || undefined }
}

async function metadataFromPeers(swarm: Swarm, infoHash: string): Promise<Buffer> {
  const tried = new Set<PeerConnection>()
  return new Promise<Buffer>((resolve, reject) => {
    let settled = false
    const attempt = (peer: PeerConnection) => {
      if (settled || tried.has(peer)) return
      tried.add(peer)
      peer.fetchMetadata(TORRENT_CAP).then(info => {
        if (settled) return
        settled = true
        cleanup()
        resolve(Buffer.concat([Buffer.from('d4:info'), info, Buffer.from('e')]))
      }, (err: Error) => {
        peer.close(`no metadata: ${err.message}`)
        check()
      })
    }
    const started = Date.now()
    const check = () => {
      if (settled) return
      const pending = [...swarm.connected].some(p => !tried.has(p))
      const stalled = Date.now() - started > STALL_MS
      if (stalled || (!pending && !swarm.hasProspects() && swarm.connected.size === 0)) {
        settled = true
        cleanup()
        reject(new DsyncError(ExitCode.network, 'sync.noMetadata', {
          infohash: infoHash, tried: [...swarm.failures].map(([p, why]) => `${p} (${why})`).join(', ') || 'no peers',
        }))
      }
    }
    const timer = setInterval(check, 500)
    const cleanup = () => {
      clearInterval(timer)
      swarm.off('peer', attempt)
    }
    swarm.on('peer', attempt)
    for (const p of swarm.connected) attempt(p)
    check()
  })
}

/** data.dsync is the torrent's first file: fetched into memory, verified piece by piece. */
async function fetchManifest(swarm: Swarm, map: PieceMap & { infoHash: string }, hashes: Buffer, opts: PullOptions): Promise<Buffer> {
  const spans = fileSpans(map, 0)
  const out = Buffer.alloc(map.files[0].length)
  const d = new Downloader({ pieces: spans, hashes, onPiece: (span, data) => data.copy(out, span.fileOffset) })
  const onPeer = (peer: PeerConnection) => { peer.ready().then(() => d.addPeer(peer), (err: Error) => peer.close(err.message)) }
  swarm.on('peer', onPeer)
  for (const p of swarm.connected) onPeer(p)
  opts.onProgress?.({ phase: 'manifest', bytesDone: 0, bytesTotal: out.length, filesDone: 0, filesTotal: 1, peers: swarm.connected.size })
  try {
    await watchDownload(d, { swarm, stallMs: STALL_MS, infoHash: map.infoHash, describe: () => MANIFEST_TORRENT_PATH })
  } finally {
    swarm.off('peer', onPeer)
  }
  return out
}

export function tryParse(bytes: Buffer, file: string): Manifest | undefined {
  try {
    return parseManifest(bytes, file)
  } catch {
    return undefined // a damaged local record only costs re-hashing the files it described
  }
}

