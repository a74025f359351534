import { join } from 'node:path'
import { DSYNC_DIR, MANIFEST_NAME } from '../torrent/layout.js'

/**
 * The files gendsync keeps under `<save>/.dsync/`; one place names them all. The folder's and
 * data.dsync's names are the torrent layout's (src/torrent/layout.ts), re-exported here.
 */
export { DSYNC_DIR, MANIFEST_NAME, MANIFEST_TORRENT_PATH } from '../torrent/layout.js'

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
