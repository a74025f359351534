import { join } from 'node:path'

/** The files gendsync keeps under `<save>/.dsync/`; one place names them all. */
export const DSYNC_DIR = '.dsync'
export const MANIFEST_NAME = 'data.dsync'
/** data.dsync's path inside the torrent: the first file, so a magnet link alone reaches it. */
export const MANIFEST_TORRENT_PATH = `${DSYNC_DIR}/${MANIFEST_NAME}`

export interface RepoFiles {
  dir: string
  manifest: string
  torrent: string
  magnet: string
  hashCache: string
  /** The content table and shard costs of data.dsync, a cache for the next hinted run (table-cache.ts). */
  tables: string
  lock: string
  /** Shard torrents of a sharded repository, one `<infohash>.torrent` each. */
  shards: string
}

export function repoFiles(save: string, repo: string): RepoFiles {
  const dir = join(save, DSYNC_DIR)
  return {
    dir,
    manifest: join(dir, MANIFEST_NAME),
    torrent: join(dir, `${repo}.torrent`),
    magnet: join(dir, `${repo}.magnet`),
    hashCache: join(dir, 'hashcache'),
    tables: join(dir, 'tables'),
    lock: join(dir, 'lock'),
    shards: join(dir, 'shards'),
  }
}
