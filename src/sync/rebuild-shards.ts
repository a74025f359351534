import { lstatSync, mkdirSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { repoFiles, type RepoFiles } from '../manifest/paths.js'
import { magnetLink, type BuiltTorrent } from '../torrent/build.js'
import { buildIndexTorrentFrom, buildShards } from '../torrent/shards.js'
import { writeFileAtomic } from '../util/atomic-write.js'
import { readOrUndefined } from './metadata.js'
import { beforeList, previousShardsOf } from './old-side.js'
import { windowedSplice } from './shard-windows.js'
import { fileReader } from '../generation/delta-apply.js'
import { hashFileSync } from '../manifest/hash-file.js'
import { generationDigests, previousTrackers, type RebuildOptions } from './rebuild-torrent.js'

/** What became of a sharded generation's torrents after a delta update. */
export interface ShardRebuild {
  /** Shard torrents built here to the record's infohash, and those DEST already held. */
  rebuilt: number
  kept: number
  /** Shards the record names that could not be built to its infohash: the caller fetches them. */
  missing: string[]
  /** The index torrent was built to the record's infohash and written (with the magnet link). */
  index: boolean
  /** Why nothing could be rebuilt, when that is the case. */
  reason?: string
}

/**
 * After a delta update of a sharded repository DEST has the new tree and data.dsync but the
 * previous generation's torrents. Shard boundaries and every torrent are pure functions of
 * data.dsync and the content, so they are rebuilt here as gendsync's change hint rebuilds
 * them: unchanged files keep the previous torrents' piece hashes, files the update changed
 * are hashed from DEST (just verified by SHA-256). First as gendsync --changed does it, from
 * data.dsync's bytes and the previous shard files' bytes with no object per file
 * (src/manifest/shard-rebuild.ts); when the previous generation was one torrent, from its
 * decoded piece hashes (`generationDigests`). A shard DEST holds already (its file is named by
 * its infohash) is kept as it is; each built one must have the record's infohash, and the
 * index is written only when it has the record's too.
 */
export function rebuildShardTorrents(opts: RebuildOptions): ShardRebuild {
  const files = repoFiles(opts.dest, opts.repo)
  const named = opts.record.shards
  const none = (reason: string): ShardRebuild => ({ rebuilt: 0, kept: 0, missing: named.filter(ih => !held(files, ih)), index: false, reason })
  const trackers = previousTrackers(files)
  if (!trackers) return none('no previous torrent')
  let out: ShardRebuild = { rebuilt: 0, kept: 0, missing: [], index: false }
  // Each shard is written (or found held, or found wrong) as it is made: one in memory at a time.
  const place = (built: BuiltTorrent, s: number) => {
    const ih = named[s]
    if (held(files, ih)) out.kept++
    else if (built.infoHash !== ih) out.missing.push(ih)
    else {
      mkdirSync(files.shards, { recursive: true })
      writeFileAtomic(join(files.shards, `${ih}.torrent`), built.torrent)
      out.rebuilt++
    }
  }
  let torrents: BuiltTorrent[] | string
  try {
    torrents = splicedShards(opts, files, trackers, place)
    if (typeof torrents === 'string') {
      out = { rebuilt: 0, kept: 0, missing: [], index: false }
      torrents = decodedShards(opts, files, trackers)
      if (typeof torrents !== 'string') torrents.forEach(place)
    }
  } catch (err) {
    return none((err as Error).message)
  }
  if (typeof torrents === 'string') return none(torrents)
  if (out.missing.length === 0) out.index = rebuildIndex(opts)
  if (out.index) removeStaleShards(files, named)
  return out
}

/**
 * The shards spliced from the previous ones' bytes (rebuildShards, window by window:
 * shard-windows.ts): a new content file whose path and SHA-256 a previous one has takes that
 * one's entry and piece hashes; the others are hashed from DEST. The previous content files
 * come from the new list and DEST's lines at the paths the deltas name (oldSide), not from
 * DEST's previous list, which is not read again. A reason when the previous generation is not
 * sharded the same way.
 */
function splicedShards(opts: RebuildOptions, files: RepoFiles, trackers: string[], onShard: (t: BuiltTorrent, s: number) => void): BuiltTorrent[] | string {
  const previous = previousShardsOf(files, opts.previousList, opts.pieceLength)
  if (typeof previous === 'string') return previous
  return windowedSplice({
    list: () => fileReader(opts.manifest), changed: beforeList(opts.before), pieceLength: opts.pieceLength,
    save: opts.dest, shardsDir: files.shards, name: opts.repo, trackers, named: opts.record.shards.length, oldShards: previous.shards, onShard,
  })
}

/** The shards from the previous torrents' decoded piece hashes; a shard DEST holds is read, not built. */
function decodedShards(opts: RebuildOptions, files: RepoFiles, trackers: string[]): BuiltTorrent[] | string {
  const digests = generationDigests(opts, files)
  if (typeof digests === 'string') return digests
  const named = opts.record.shards
  if (digests.starts.length !== named.length) return `${digests.starts.length} shards here, ${named.length} in the record`
  return named.map((ih, s) => {
    const existing = readOrUndefined(join(files.shards, `${ih}.torrent`))
    if (existing) return { infoHash: ih, torrent: existing }
    const end = s + 1 < digests.starts.length ? digests.starts[s + 1] : digests.content.length
    return buildShards(opts.repo, opts.pieceLength, trackers, digests.content.slice(digests.starts[s], end), [0])[0]
  })
}

/**
 * The index torrent from data.dsync and the shard .torrent files DEST now holds (each read
 * while it is hashed), written (with the magnet link) only when it has the record's infohash.
 */
export function rebuildIndex(opts: RebuildOptions): boolean {
  const files = repoFiles(opts.dest, opts.repo)
  const trackers = previousTrackers(files)
  if (!trackers) return false
  try {
    // data.dsync and each shard file hashed as they are read through one reused buffer: at 1M
    // files 153 MB and 77 files of ~2 MB that were each a buffer of their own.
    const hashed = (path: string) => {
      const st = lstatSync(path)
      return { length: st.size, hash: () => hashFileSync(path, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino }, opts.pieceLength, true) }
    }
    const shards = opts.record.shards.map(ih => ({ infoHash: ih, ...hashed(join(files.shards, `${ih}.torrent`)) }))
    const manifest = hashed(opts.manifest)
    const list = { length: manifest.length, ...manifest.hash() }
    const index = buildIndexTorrentFrom(opts.repo, opts.pieceLength, trackers, list, shards)
    if (index.infoHash !== opts.record.torrent) return false
    writeFileAtomic(files.torrent, index.torrent)
    writeFileAtomic(files.magnet, magnetLink(index.infoHash, opts.repo, trackers) + '\n')
    return true
  } catch {
    return false
  }
}

function held(files: RepoFiles, infoHash: string): boolean {
  try {
    return lstatSync(join(files.shards, `${infoHash}.torrent`)).size > 0
  } catch {
    return false
  }
}

/** Shard files the new index does not name: removed once that index is in place. */
export function removeStaleShards(files: RepoFiles, named: string[]): void {
  const keep = new Set(named.map(ih => `${ih}.torrent`))
  let names: string[]
  try {
    names = readdirSync(files.shards)
  } catch {
    return
  }
  for (const name of names) if (!keep.has(name) && /^[0-9a-f]{40}\.torrent$/.test(name)) rmSync(join(files.shards, name), { force: true })
}
