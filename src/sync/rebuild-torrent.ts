import { lstatSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { unpaddedTail } from '../generation/delta-torrent.js'
import type { GenerationRecord } from '../generation/record.js'
import type { Manifest } from '../manifest/format.js'
import { hashBuffer, hashFileSync } from '../manifest/hash-file.js'
import { MANIFEST_TORRENT_PATH, repoFiles } from '../manifest/paths.js'
import { buildTorrent, magnetLink } from '../torrent/build.js'
import { layoutFiles } from '../torrent/layout.js'
import { matchTorrentToManifest } from '../torrent/match.js'
import { readTorrentInfo } from '../torrent/read.js'
import { writeFileAtomic } from '../util/atomic-write.js'

export interface RebuildOptions {
  dest: string
  repo: string
  record: GenerationRecord
  manifest: Manifest
  manifestBytes: Buffer
  /** DEST's data.dsync before this update, and its size: the old torrent's layout. */
  previous: Manifest
  previousSize: number
}

/**
 * After an update through the delta chain DEST has the new tree but not the new repository
 * torrent, which a host re-serving DEST needs. The torrent is a pure function of data.dsync
 * and the content, so it is rebuilt here: piece hashes of unchanged files from the previous
 * torrent, the changed files hashed from DEST (they were just verified by SHA-256). Returns
 * false when it cannot be rebuilt to the record's infohash (the caller fetches it instead).
 */
export function rebuildRepoTorrent(opts: RebuildOptions): boolean {
  const files = repoFiles(opts.dest, opts.repo)
  if (opts.record.shards.length > 0) return false // sharded: the index torrent lists shard torrents this client does not have
  let old
  try {
    old = readTorrentInfo(readFileSync(files.torrent))
  } catch {
    return false
  }
  const pieceLength = opts.manifest.header.pieceLength
  const oldLayout = matchTorrentToManifest(old, opts.previous, opts.previousSize)
  if (typeof oldLayout === 'string' || old.pieceLength !== pieceLength) return false
  const oldPieces = new Map<string, { sha256: Buffer; pieces: Buffer }>()
  const byPath = new Map(opts.previous.entries.map(e => [e.path, e]))
  // Every file of the old torrent but its last (whose last piece is hashed unpadded) and data.dsync.
  for (const f of oldLayout.slice(1, -1)) {
    const e = byPath.get(f.path)
    if (f.pad || !e?.sha256) continue
    const first = f.offset / pieceLength
    oldPieces.set(f.path, { sha256: e.sha256, pieces: old.pieces.subarray(first * 20, (first + Math.ceil(f.length / pieceLength)) * 20) })
  }
  const content = opts.manifest.entries.filter(e => e.type === 'f' && e.size > 0)
  const digests = [hashBuffer(opts.manifestBytes, pieceLength, content.length === 0).pieces]
  content.forEach(e => {
    const reused = oldPieces.get(e.path)
    if (reused && reused.sha256.equals(e.sha256!)) digests.push(reused.pieces)
    else {
      const abs = join(opts.dest, e.path)
      const st = lstatSync(abs)
      digests.push(hashFileSync(abs, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino }, pieceLength).pieces)
    }
  })
  const pieces = Buffer.concat(digests)
  const last = content[content.length - 1]
  if (last && last.size % pieceLength !== 0) unpaddedTail(join(opts.dest, last.path), last.size - (last.size % pieceLength), last.size % pieceLength).copy(pieces, pieces.length - 20)
  if (!last && opts.manifestBytes.length % pieceLength !== 0) hashBuffer(opts.manifestBytes, pieceLength, true).tail!.copy(pieces, pieces.length - 20)
  const layout = layoutFiles([{ path: MANIFEST_TORRENT_PATH, length: opts.manifestBytes.length }, ...content.map(e => ({ path: e.path, length: e.size }))], pieceLength)
  const built = buildTorrent({ name: opts.repo, pieceLength, files: layout, pieces, trackers: old.trackers })
  if (built.infoHash !== opts.record.torrent) return false
  writeFileAtomic(files.torrent, built.torrent)
  writeFileAtomic(files.magnet, magnetLink(built.infoHash, opts.repo, old.trackers) + '\n')
  return true
}

/** A torrent that no longer matches DEST's data.dsync must not be served. */
export function dropStaleTorrent(dest: string, repo: string): void {
  const files = repoFiles(dest, repo)
  rmSync(files.torrent, { force: true })
  rmSync(files.magnet, { force: true })
}
