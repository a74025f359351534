import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { contentFiles, readManifestLines } from '../manifest/manifest-lines.js'
import { loadHashCacheInodes } from '../manifest/hash-cache.js'
import { MANIFEST_TORRENT_PATH, repoFiles } from '../manifest/paths.js'
import { magnetLink } from '../torrent/build.js'
import type { LayoutFile } from '../torrent/layout.js'
import { matchShardsToManifest, matchTorrentToManifest, type ManifestShape } from '../torrent/match.js'
import { readTorrentInfo, type TorrentInfo } from '../torrent/read.js'
import { indexedShards, shardTorrentPath } from '../torrent/shards.js'

/** One byte range of the torrent's content, and where its bytes come from. */
export interface Segment {
  /** Offset in the torrent's concatenated content. */
  offset: number
  length: number
  source: 'pad' | 'manifest' | 'memory' | 'file'
  /** Torrent path (repo-relative) for 'file'. */
  path: string
  /** The bytes of a 'memory' segment (a shard .torrent inside a sharded repository's index). */
  data?: Buffer
  /** What data.dsync says the file on disk must be; checked when the file is opened. */
  mtime: number
  /** The inode gendsync hashed (from its hash cache, when that agrees on size and mtime). */
  ino?: number
}

/**
 * One generation of a published repository, ready to seed: data.dsync, the .torrent made
 * from it, and the byte layout tying the two together. Nothing here reads the repository's
 * files: the host trusts gendsync's hashes and checks size/mtime when a file is opened.
 */
export interface Generation {
  repo: string
  save: string
  infoHash: string
  infoBytes: Buffer
  torrent: Buffer
  magnet: string
  manifest: Buffer
  /** SHA-256 of data.dsync (hex): the generation's identity. */
  digest: string
  pieceLength: number
  pieceCount: number
  totalLength: number
  segments: Segment[]
  files: number
  bytes: number
  trackers: string[]
  /**
   * A sharded repository: this generation is its index torrent (data.dsync and the shard
   * .torrent files), and each shard is a generation of its own, seeded under its infohash.
   */
  shards?: Generation[]
}

export class GenerationError extends Error {}

export function loadGeneration(repo: string, save: string): Generation {
  const paths = repoFiles(save, repo)
  const manifestBytes = readOrFail(paths.manifest)
  const torrent = readOrFail(paths.torrent)
  let magnet = ''
  try {
    magnet = readFileSync(paths.magnet, 'utf8').trim()
  } catch {
    // the magnet link is derived below when the file is missing
  }
  // Not parseManifest: an object per entry and a buffer per digest cost ~1.8 GB at 1M files.
  // The host needs the content files only; the END checksum and every path are still checked.
  const lines = readManifestLines(manifestBytes, paths.manifest)
  const manifest = { header: { pieceLength: lines.pieceLength }, entries: contentFiles(lines, paths.manifest) }
  let info
  try {
    info = readTorrentInfo(torrent)
  } catch (err) {
    throw new GenerationError(`${paths.torrent}: malformed torrent (${(err as Error).message})`)
  }
  const mtimes = new Map<string, number>()
  for (const e of manifest.entries) mtimes.set(e.path, e.mtime)
  const base = {
    repo, save, manifest: manifestBytes, digest: lines.digest, files: lines.files, bytes: lines.bytes,
    pieceLength: manifest.header.pieceLength, trackers: info.trackers,
  }
  const named = indexedShards(info.files)
  const inodes = loadHashCacheInodes(paths.hashCache)
  if (named) return loadSharded(paths.torrent, paths.shards, info, torrent, named, manifest, base, magnet, mtimes, inodes)
  // The torrent must describe exactly the bytes data.dsync describes; a torrent from another
  // generation (gendsync interrupted between renames, a hand-copied file) is refused.
  const layout = matchTorrentToManifest(info, manifest, manifestBytes.length)
  if (typeof layout === 'string') throw new GenerationError(`${paths.torrent}: ${layout}`)
  return {
    ...base, ...shape(layout, base.pieceLength, mtimes, inodes),
    infoHash: info.infoHash, infoBytes: info.infoBytes, torrent,
    magnet: magnet || magnetLink(info.infoHash, repo, []),
  }
}

type Inodes = ReturnType<typeof loadHashCacheInodes>
type Base = Pick<Generation, 'repo' | 'save' | 'manifest' | 'digest' | 'pieceLength' | 'trackers' | 'files' | 'bytes'>

/** The index and every shard it names, each checked against data.dsync. */
function loadSharded(
  indexFile: string, shardDir: string, info: TorrentInfo, torrent: Buffer, named: string[],
  manifest: ManifestShape, base: Base, magnet: string, mtimes: Map<string, number>, inodes: Inodes,
): Generation {
  const shardTorrents = named.map(ih => readOrFail(join(shardDir, `${ih}.torrent`)))
  const shardInfos = shardTorrents.map((bytes, i) => {
    let si: TorrentInfo
    try {
      si = readTorrentInfo(bytes)
    } catch (err) {
      throw new GenerationError(`${join(shardDir, `${named[i]}.torrent`)}: malformed torrent (${(err as Error).message})`)
    }
    if (si.infoHash !== named[i]) throw new GenerationError(`${join(shardDir, `${named[i]}.torrent`)}: infohash ${si.infoHash} differs from its name`)
    return { ...si, torrentLength: bytes.length }
  })
  const layouts = matchShardsToManifest(info, shardInfos, manifest, base.manifest.length)
  if (typeof layouts === 'string') throw new GenerationError(`${indexFile}: ${layouts}`)
  const memory = new Map(named.map((ih, i) => [shardTorrentPath(ih), shardTorrents[i]]))
  const shards = shardInfos.map((si, i): Generation => {
    const files = layouts.shards[i].filter(f => !f.pad)
    return {
      ...base, ...shape(layouts.shards[i], base.pieceLength, mtimes, inodes),
      infoHash: si.infoHash, infoBytes: si.infoBytes, torrent: shardTorrents[i], magnet: magnetLink(si.infoHash, base.repo, si.trackers),
      files: files.length, bytes: files.reduce((sum, f) => sum + f.length, 0),
    }
  })
  return {
    ...base, ...shape(layouts.index, base.pieceLength, mtimes, inodes, memory),
    infoHash: info.infoHash, infoBytes: info.infoBytes, torrent,
    magnet: magnet || magnetLink(info.infoHash, base.repo, []),
    shards,
  }
}

/** Segments of a layout: data.dsync first (an index or one-torrent repo), pads, files. */
function shape(layout: LayoutFile[], pieceLength: number, mtimes: Map<string, number>, inodes: Inodes, memory?: Map<string, Buffer>) {
  const last = layout[layout.length - 1]
  const totalLength = last.offset + last.length
  const segments: Segment[] = layout.map(f => {
    const data = memory?.get(f.path)
    const source: Segment['source'] = f.pad ? 'pad' : f.path === MANIFEST_TORRENT_PATH ? 'manifest' : data ? 'memory' : 'file'
    const mtime = mtimes.get(f.path) ?? 0
    const seg: Segment = { offset: f.offset, length: f.length, source, path: f.path, mtime }
    const cached = source === 'file' ? inodes.get(f.path) : undefined
    if (cached && cached.size === f.length && Math.floor(cached.mtimeMs / 1000) === mtime) seg.ino = cached.ino
    if (data) seg.data = data
    return seg
  })
  return { segments, totalLength, pieceCount: Math.ceil(totalLength / pieceLength) }
}

/** Where a piece-relative range lives: the full path on disk of a segment. */
export function segmentFile(gen: Generation, seg: Segment): string {
  return join(gen.save, seg.path)
}

function readOrFail(file: string): Buffer {
  try {
    return readFileSync(file)
  } catch (err) {
    throw new GenerationError(`${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing (run gendsync)' : (err as Error).message}`)
  }
}
