import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseManifest } from '../manifest/format.js'
import { loadHashCacheInodes } from '../manifest/hash-cache.js'
import { repoFiles } from '../manifest/paths.js'
import { matchTorrentToManifest } from '../torrent/match.js'
import { readTorrentInfo } from '../torrent/read.js'

/** One byte range of the torrent's content, and where its bytes come from. */
export interface Segment {
  /** Offset in the torrent's concatenated content. */
  offset: number
  length: number
  source: 'pad' | 'manifest' | 'file'
  /** Torrent path (repo-relative) for 'file'. */
  path: string
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
  const manifest = parseManifest(manifestBytes, paths.manifest)
  let info
  try {
    info = readTorrentInfo(torrent)
  } catch (err) {
    throw new GenerationError(`${paths.torrent}: malformed torrent (${(err as Error).message})`)
  }
  const pieceLength = manifest.header.pieceLength
  const content = manifest.entries.filter(e => e.type === 'f' && e.size > 0)
  // The torrent must describe exactly the bytes data.dsync describes; a torrent from another
  // generation (gendsync interrupted between renames, a hand-copied file) is refused.
  const layout = matchTorrentToManifest(info, manifest, manifestBytes.length)
  if (typeof layout === 'string') throw new GenerationError(`${paths.torrent}: ${layout}`)
  const last = layout[layout.length - 1]
  const totalLength = last.offset + last.length
  const pieceCount = Math.ceil(totalLength / pieceLength)
  const mtimes = new Map<string, number>()
  for (const e of content) mtimes.set(e.path, e.mtime)
  const inodes = loadHashCacheInodes(paths.hashCache)
  const segments: Segment[] = layout.map((f, i) => {
    const mtime = mtimes.get(f.path) ?? 0
    const cached = inodes.get(f.path)
    const ino = cached && cached.size === f.length && Math.floor(cached.mtimeMs / 1000) === mtime ? cached.ino : undefined
    return { offset: f.offset, length: f.length, source: f.pad ? 'pad' : i === 0 ? 'manifest' : 'file', path: f.path, mtime, ino }
  })
  return {
    repo, save,
    infoHash: info.infoHash, infoBytes: info.infoBytes, torrent,
    magnet: magnet || `magnet:?xt=urn:btih:${info.infoHash}&dn=${encodeURIComponent(repo)}`,
    manifest: manifestBytes,
    digest: manifest.digest.toString('hex'),
    pieceLength, pieceCount, totalLength, segments,
    files: manifest.header.files, bytes: manifest.header.bytes,
    trackers: info.trackers,
  }
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
