import { mkdirSync } from 'node:fs'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { join } from 'node:path'
import { STALL_MS } from '../config/defaults.js'
import { DsyncError, ExitCode, fsError } from '../errors.js'
import { sha256Hex } from '../generation/delta.js'
import { parseManifest, parseManifestFile, type Manifest } from '../manifest/format.js'
import { MANIFEST_TORRENT_PATH, repoFiles, type RepoFiles } from '../manifest/paths.js'
import { Downloader } from '../swarm/downloader.js'
import type { PeerConnection } from '../swarm/peer.js'
import type { Swarm } from '../swarm/swarm.js'
import { matchTorrentToManifest } from '../torrent/match.js'
import { indexedShards } from '../torrent/shards.js'
import { fileSpans, pieceMap, type PieceMap, type PieceSpan } from '../torrent/piece-map.js'
import type { TorrentInfo } from '../torrent/read.js'
import { openSwarm, type SwarmSession } from './open-swarm.js'
import { mustMatch } from './record-gate.js'
import { loadShards, METADATA_DOWNLOAD, type ClientShard, type ShardStore } from './shards.js'
import { TORRENT_CAP } from './resolved-source.js'
import { layoutOf, parseTorrent } from './torrent-check.js'
import { pieceVerifies, watchDownload } from './transfer.js'
import { startEarlyFetch, type EarlyFetch } from './early-fetch.js'
import { traceMark } from '../swarm/trace.js'
import type { PullContext, PullOptions } from './types.js'
import { readOrUndefined } from '../util/read-file.js'
import { writeFileAtomic } from '../util/atomic-write.js'
import { collectNow, RELEASE_MIN_BYTES, youngCollector } from '../util/release-memory.js'

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
  /** data.dsync's bytes, unless they were parked on disk (`manifestFile`) as soon as checked. */
  manifestBytes?: Buffer
  /** The new data.dsync, parked under DEST/.dsync/staging (a `park` run, not the same generation). */
  manifestFile?: string
  /** DEST's own data.dsync when it has a valid one (the plan trusts what it vouches for). */
  previous?: Manifest
  /** DEST's data.dsync is already this generation's. */
  sameGeneration: boolean
  /** A sharded repository: the torrent is its index, the files are in these shards. */
  shards?: ClientShard[]
}

/**
 * The torrent: over HTTP from a host when one offers it (a refused torrent then leaves no
 * peer dialled, except in a bootstrap, whose swarm the resolve stage opened ahead), else BEP 9
 * from the swarm. A torrent naming trackers when no source did
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

/**
 * What a run that holds DEST's lock (and is not a dry run) writes as soon as each piece of the
 * metadata is checked, instead of holding it: data.dsync parked in staging, the shard torrents
 * in DEST/.dsync/shards/ (docs/SCALE.md, "Bootstrap memory"). `written` lists the shard torrents
 * this run created; `manifestFile` the parked data.dsync (both removed by a run refused before its fetch).
 */
export interface MetadataPark extends ShardStore {
  stagingDir: string
  manifestFile?: string
  /** Takes DEST's lock (unless the caller holds it): called once the record's checks passed, before the first write. */
  hold: () => void
  /** A bootstrap's pieces, asked for from here on while the list is parsed and planned (early-fetch.ts). */
  early?: EarlyFetch
}

/** data.dsync: DEST's own when it is already this generation's, else fetched from the swarm. */
export async function manifestStage(ctx: PullContext, swarm: Swarm, { info }: TorrentStage, park?: MetadataPark): Promise<ManifestStage> {
  const { opts, resolved } = ctx
  const map = { ...pieceMap(layoutOf(info), info.pieceLength), infoHash: info.infoHash }
  const files = repoFiles(opts.dest, info.name)
  const previousBytes = readOrUndefined(files.manifest)
  const sameGeneration = previousBytes !== undefined && previousBytes.length === map.files[0].length &&
    fileSpans(map, 0).every(s => pieceVerifies(previousBytes.subarray(s.fileOffset, s.fileOffset + s.dataLength), s, info.pieces))
  // A sharded repository's torrent is its index: data.dsync and the shard torrents.
  const named = indexedShards(info.files)
  const got = await checkedManifest(ctx, swarm, map, info, named, sameGeneration ? previousBytes : undefined, park)
  const label = `${resolved[0].source} data.dsync`
  let manifest: Manifest
  if (got.file) {
    // Verified piece by piece (and by the record): its bytes (153 MB at 1M files) wait on disk
    // from here to the commit, and are parsed from there, never beside the entries they make.
    if (got.length >= RELEASE_MIN_BYTES) collectNow()
    manifest = parseManifestFile(got.file, label)
  } else manifest = parseManifest(got.bytes!, label)
  traceMark('manifest-parsed')
  // An early fetch's blocks are read and its requests topped up between the long synchronous stages.
  if (park?.early) await nextTurn()
  const shards = named && await loadShards(named, files, { index: info, indexMap: map, swarm, stallMs: STALL_MS, from: resolved[0].source }, manifest, got.length, park)
  traceMark('shards-loaded')
  const matched = shards ? [] : matchTorrentToManifest(info, manifest, got.length)
  if (typeof matched === 'string') throw new DsyncError(ExitCode.badData, 'sync.manifestMismatch', { from: resolved[0].source, reason: matched })
  const previous = previousBytes && !sameGeneration ? tryParse(previousBytes, files.manifest) : sameGeneration ? manifest : undefined
  return { map, files, manifest, manifestBytes: got.bytes, manifestFile: got.file, previous, sameGeneration, shards: shards || undefined }
}

/**
 * data.dsync's bytes (`own`: DEST's, else fetched), checked against the signed record with the
 * shard list; then DEST's lock is taken (`park.hold`) and, on a `park` run that fetched them,
 * they are parked on disk and only the file's name is returned.
 *
 * Why a function of its own: an async function's frame keeps the value an `await` gave it in
 * a register until the frame suspends again, whatever its variables say, so the bytes dropped
 * in manifestStage itself stayed alive through the parse that followed (synchronous, seconds
 * at 1M files): 146 MiB of ArrayBuffers beside the parsed list, the 1M bootstrap's peak (h11b9's
 * trace marks: 542 MiB RSS at the parse's end, the collection before it freed nothing). This
 * frame is gone when the parse starts.
 */
async function checkedManifest(ctx: PullContext, swarm: Swarm, map: PieceMap & { infoHash: string }, info: TorrentInfo, named: string[] | undefined, own: Buffer | undefined, park?: MetadataPark): Promise<{ bytes?: Buffer; file?: string; length: number }> {
  const { opts, resolved, record } = ctx
  const bytes = own ?? await fetchManifest(swarm, map, info.pieces, opts)
  traceMark('manifest-fetched')
  if (record) mustMatch(resolved[0].source, 'data.dsync', sha256Hex(bytes), record.manifest.sha256)
  if (named && record) mustMatch(resolved[0].source, 'shard list', named.join(' '), record.shards.join(' '))
  // What the record vouches for is checked: from here DEST's lock is held and things are written.
  park?.hold()
  // The links would be idle from here to the transfer's first request (parse, plan, set-up).
  if (park && !own && !named) park.early = startEarlyFetch(opts.dest, swarm, map, info.pieces, opts.onWarning)
  if (!park || own) return { bytes, length: bytes.length }
  park.manifestFile = parkManifest(bytes, park.stagingDir)
  return { file: park.manifestFile, length: bytes.length }
}

/**
 * While the files are fetched and applied (minutes, at 1M files), data.dsync waits on disk in
 * staging, not in memory (153 MB at 1M files); the commit renames it into place. It is
 * fsync'ed as the commit's own write would be; a killed run's copy goes with staging's
 * other leftovers (Staging.prune drops every name at its top).
 */
export function parkManifest(bytes: Buffer, stagingDir: string): string {
  try {
    mkdirSync(stagingDir, { recursive: true })
  } catch (err) {
    throw fsError(err, stagingDir, 'write')
  }
  const file = join(stagingDir, 'data.dsync.next')
  writeFileAtomic(file, bytes)
  return file
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
  // Through a holder emptied on return: the swarm's peers keep the downloader (and this closure)
  // until they close, and data.dsync's bytes are to leave memory as soon as they are parked.
  const into: { out?: Buffer } = { out }
  const received = youngCollector()
  const onPiece = (span: PieceSpan, data: Buffer) => {
    if (into.out) data.copy(into.out, span.fileOffset)
    received(span.dataLength)
  }
  // Hashed on the event loop, not the verifier thread: see METADATA_DOWNLOAD.
  const d = new Downloader({ pieces: spans, hashes, onPiece, ...METADATA_DOWNLOAD })
  const onPeer = (peer: PeerConnection) => { peer.ready().then(() => d.addPeer(peer), (err: Error) => peer.close(err.message)) }
  swarm.on('peer', onPeer)
  for (const p of swarm.connected) onPeer(p)
  opts.onProgress?.({ phase: 'manifest', bytesDone: 0, bytesTotal: out.length, filesDone: 0, filesTotal: 1, peers: swarm.connected.size })
  try {
    await watchDownload(d, { swarm, stallMs: STALL_MS, infoHash: map.infoHash, describe: () => MANIFEST_TORRENT_PATH })
  } finally {
    swarm.off('peer', onPeer)
    into.out = undefined
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

