import { repoFiles } from '../manifest/paths.js'
import { prefetchStamped, sameFile, type FileStamp } from '../util/prefetch.js'

/** Files of the previous generation read on libuv's threads before the run holds its lock. */
export type ReadAhead = Promise<Map<string, { buf: Buffer; stamp: FileStamp }>>

/**
 * What a hinted run reads first (data.dsync, ~30 MB at 200k files; the index torrent; the
 * tables), started by the CLI before it loads gendsync's modules, so the reads overlap that
 * loading instead of following it on the main thread.
 */
export function readAheadGeneration(save: string, name: string): ReadAhead {
  const files = repoFiles(save, name)
  return prefetchStamped([files.manifest, files.torrent, files.tables])
}

/**
 * The bytes read ahead for `path`, when the path still names that file (called with the lock
 * held: another gendsync may have renamed a new generation over it before); undefined otherwise,
 * and the caller reads it itself.
 */
export function stillCurrent(read: Map<string, { buf: Buffer; stamp: FileStamp }> | undefined, path: string): Buffer | undefined {
  const r = read?.get(path)
  return r && sameFile(path, r.stamp) ? r.buf : undefined
}
