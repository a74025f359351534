import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { repoFiles, type RepoFiles } from '../manifest/paths.js'
import { magnetLink, type BuiltTorrent } from '../torrent/build.js'
import { buildIndexTorrent, buildShards } from '../torrent/shards.js'
import { writeFileAtomic } from '../util/atomic-write.js'
import { readOrUndefined } from './metadata.js'
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
 * them (src/manifest/hinted.ts): unchanged files keep the previous torrents' piece hashes,
 * files the update changed are hashed from DEST (just verified by SHA-256). A shard DEST
 * holds already (its file is named by its infohash) is kept as it is; each built one must
 * have the record's infohash, and the index is written only when it has the record's too.
 */
export function rebuildShardTorrents(opts: RebuildOptions): ShardRebuild {
  const files = repoFiles(opts.dest, opts.repo)
  const named = opts.record.shards
  const none = (reason: string): ShardRebuild => ({ rebuilt: 0, kept: 0, missing: named.filter(ih => !held(files, ih)), index: false, reason })
  const trackers = previousTrackers(files)
  if (!trackers) return none('no previous torrent')
  const pieceLength = opts.manifest.header.pieceLength
  let digests
  try {
    digests = generationDigests(opts, files)
  } catch (err) {
    return none((err as Error).message)
  }
  if (typeof digests === 'string') return none(digests)
  if (digests.starts.length !== named.length) return none(`${digests.starts.length} shards here, ${named.length} in the record`)
  const out: ShardRebuild = { rebuilt: 0, kept: 0, missing: [], index: false }
  const torrents: BuiltTorrent[] = named.map((ih, s) => {
    const existing = readOrUndefined(join(files.shards, `${ih}.torrent`))
    if (existing) {
      out.kept++
      return { infoHash: ih, torrent: existing }
    }
    const end = s + 1 < digests.starts.length ? digests.starts[s + 1] : digests.content.length
    const [built] = buildShards(opts.repo, pieceLength, trackers, digests.content.slice(digests.starts[s], end), [0])
    if (built.infoHash !== ih) {
      out.missing.push(ih)
      return built
    }
    mkdirSync(files.shards, { recursive: true })
    writeFileAtomic(join(files.shards, `${ih}.torrent`), built.torrent)
    out.rebuilt++
    return built
  })
  if (out.missing.length === 0) out.index = writeIndex(opts, files, trackers, torrents)
  if (out.index) removeStaleShards(files, named)
  return out
}

/**
 * The index torrent from data.dsync and the shard .torrent files DEST now holds, written
 * (with the magnet link) only when it has the record's infohash.
 */
export function rebuildIndex(opts: RebuildOptions): boolean {
  const files = repoFiles(opts.dest, opts.repo)
  const trackers = previousTrackers(files)
  if (!trackers) return false
  try {
    const torrents = opts.record.shards.map(ih => ({ infoHash: ih, torrent: readFileSync(join(files.shards, `${ih}.torrent`)) }))
    return writeIndex(opts, files, trackers, torrents)
  } catch {
    return false
  }
}

function writeIndex(opts: RebuildOptions, files: RepoFiles, trackers: string[], shards: BuiltTorrent[]): boolean {
  const index = buildIndexTorrent(opts.repo, opts.manifest.header.pieceLength, trackers, opts.manifestBytes, shards)
  if (index.infoHash !== opts.record.torrent) return false
  writeFileAtomic(files.torrent, index.torrent)
  writeFileAtomic(files.magnet, magnetLink(index.infoHash, opts.repo, trackers) + '\n')
  return true
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
