import { lstatSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { GenerationRecord } from '../generation/record.js'
import type { Manifest } from '../manifest/format.js'
import { hashBuffer, hashFileSync, type FileDigest } from '../manifest/hash-file.js'
import { reuseDigests } from '../manifest/hinted.js'
import { MANIFEST_TORRENT_PATH, repoFiles, type RepoFiles } from '../manifest/paths.js'
import { buildTorrent, magnetLink } from '../torrent/build.js'
import { layoutFiles } from '../torrent/layout.js'
import { readTorrentInfo } from '../torrent/read.js'
import { writeFileAtomic } from '../util/atomic-write.js'

export interface RebuildOptions {
  dest: string
  repo: string
  record: GenerationRecord
  /** The new generation's piece length (data.dsync's header). */
  pieceLength: number
  /** The new data.dsync (DEST's, once committed): read as a stream, or whole for a one-torrent repository. */
  manifest: string
  /**
   * DEST's data.dsync before this update (the old torrents' layout): after the commit, the
   * link kept beside the new one (src/sync/unfinished-commit.ts). Only its size and last
   * piece are read (the previous index torrent must be its).
   */
  previousList: string
  /** DEST's previous line at each path the deltas name (undefined: none): with the new list, all the splice needs of the previous one. */
  before: Map<string, string | undefined>
  /**
   * Both lists parsed, on demand: only a rebuild that decodes the previous torrent uses them
   * (one torrent: at most 32,768 files); the sharded splice works on the bytes.
   */
  parsed: () => { manifest: Manifest; previous: Manifest }
}

/**
 * After an update through the delta chain DEST has the new tree but not the new repository
 * torrent, which a host re-serving DEST needs. The torrent is a pure function of data.dsync
 * and the content, so it is rebuilt here: piece hashes of unchanged files from the previous
 * torrent (or shards), the changed files hashed from DEST (they were just verified by
 * SHA-256). Returns false when it cannot be rebuilt to the record's infohash (the caller
 * fetches it instead). A sharded generation: src/sync/rebuild-shards.ts.
 */
export function rebuildRepoTorrent(opts: RebuildOptions): boolean {
  const files = repoFiles(opts.dest, opts.repo)
  const pieceLength = opts.pieceLength
  const trackers = previousTrackers(files)
  let digests
  try {
    digests = trackers && generationDigests(opts, files)
  } catch {
    return false
  }
  if (!trackers || typeof digests !== 'object' || digests.starts.length !== 1) return false
  const content = digests.content
  // One torrent: at most 32,768 files, so the list is small enough to read whole.
  const manifestBytes = readFileSync(opts.manifest)
  const head = hashBuffer(manifestBytes, pieceLength, content.length === 0)
  const pieces = Buffer.concat([head.pieces, ...content.map(f => f.pieces)])
  // The torrent's last piece is short, not padded: it takes the unpadded hash.
  const tail = content.length > 0 ? content[content.length - 1].tail : head.tail
  tail?.copy(pieces, pieces.length - 20)
  const layout = layoutFiles([{ path: MANIFEST_TORRENT_PATH, length: manifestBytes.length }, ...content.map(f => ({ path: f.path, length: f.length }))], pieceLength)
  const built = buildTorrent({ name: opts.repo, pieceLength, files: layout, pieces, trackers })
  if (built.infoHash !== opts.record.torrent) return false
  writeFileAtomic(files.torrent, built.torrent)
  writeFileAtomic(files.magnet, magnetLink(built.infoHash, opts.repo, trackers) + '\n')
  return true
}

/** The trackers the previous generation's torrent named (a rebuilt torrent keeps them). */
export function previousTrackers(files: RepoFiles): string[] | undefined {
  try {
    return readTorrentInfo(readFileSync(files.torrent)).trackers
  } catch {
    return undefined
  }
}

/**
 * Piece hashes of every content file of the new generation, and its shard starts (`[0]`: one
 * torrent), as gendsync's change hint computes them (`reuseDigests`): files whose SHA-256 the
 * update changed are hashed from DEST, the others keep the previous torrents' hashes. A reason
 * instead when the previous torrents do not fit.
 */
export function generationDigests(opts: RebuildOptions, files: RepoFiles): ReturnType<typeof reuseDigests> {
  const pieceLength = opts.pieceLength
  const { manifest, previous } = opts.parsed()
  const before = new Map<string, Buffer>()
  for (const e of previous.entries) if (e.type === 'f' && e.sha256) before.set(e.path, e.sha256)
  const content = []
  const digests = new Map<string, FileDigest>()
  for (const e of manifest.entries) {
    if (e.type !== 'f' || e.size === 0) continue
    const changed = !before.get(e.path)?.equals(e.sha256!)
    content.push({ path: e.path, length: e.size, changed })
    if (!changed) continue
    const abs = join(opts.dest, e.path)
    const st = lstatSync(abs)
    digests.set(e.path, hashFileSync(abs, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino }, pieceLength, true))
  }
  return reuseDigests(opts.dest, files, content, digests, pieceLength)
}

/** A torrent that no longer matches DEST's data.dsync must not be served. */
export function dropStaleTorrent(dest: string, repo: string): void {
  const files = repoFiles(dest, repo)
  rmSync(files.torrent, { force: true })
  rmSync(files.magnet, { force: true })
}
