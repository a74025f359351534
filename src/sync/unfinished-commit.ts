import { copyFileSync, linkSync, lstatSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { GenerationRecord } from '../generation/record.js'
import type { RepoFiles } from '../manifest/paths.js'

/**
 * A pull killed at apply:commit leaves DEST with the new record and data.dsync but the
 * previous generation's torrents (they are rebuilt after data.dsync is written, and from the
 * previous list). The re-run sees the same record and must not answer "unchanged": a host
 * re-serving DEST would serve a torrent of another generation. These are the pieces the
 * delta route uses to notice that and finish the commit (src/sync/delta-route.ts).
 */

/** Where DEST's previous data.dsync is kept (a hard link) from just before the commit until its torrents are rebuilt. */
export function previousListPath(files: RepoFiles): string {
  return join(files.dir, 'data.dsync.previous')
}

/** Keeps DEST's current data.dsync under previousListPath: the torrents it describes can still be spliced after a kill. */
export function keepPreviousList(files: RepoFiles): void {
  const to = previousListPath(files)
  rmSync(to, { force: true })
  try {
    linkSync(files.manifest, to)
  } catch {
    // No hard links on this file system: a copy (once per update).
    copyFileSync(files.manifest, to)
  }
}

export function dropPreviousList(files: RepoFiles): void {
  rmSync(previousListPath(files), { force: true })
}

/**
 * DEST's commit of this record is complete: its magnet link names the record's infohash and it
 * holds every shard torrent the record names. The magnet link is written last, after the
 * torrent (and the shards before the index), so this is cheap enough for the no-change check:
 * no torrent decoded.
 */
export function torrentsCurrent(files: RepoFiles, record: GenerationRecord): boolean {
  try {
    if (!readFileSync(files.magnet, 'latin1').includes(`urn:btih:${record.torrent}`)) return false
    return record.shards.every(ih => lstatSync(join(files.shards, `${ih}.torrent`)).size > 0)
  } catch {
    return false
  }
}
