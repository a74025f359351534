import { forEachCachedInode, forEachCachedInodeAsync, type CachedInodeVisitor } from '../manifest/hash-cache.js'
import type { ManifestFiles } from './manifest-files.js'

/**
 * Fills `files.inodes` from gendsync's hash cache: the inode gendsync hashed, for each file
 * whose cache line agrees with data.dsync on size and mtime (a hardlink or copy swapped in
 * later with the same size and mtime is then refused when opened). The cache is written in
 * data.dsync's order, so this is a merge of two sorted lists compared as bytes, with no map
 * of paths; lines a change-hinted gendsync appended (out of order, a later line wins) are
 * found by binary search. A path whose escaped and plain orders disagree may go without an
 * inode: its size and mtime are still checked.
 */
export function loadInodes(cacheFile: string, files: ManifestFiles): void {
  forEachCachedInode(cacheFile, merger(files))
}

/**
 * The same, reading in the background: a host answers HTTP while a 1M-file cache (~190 MB)
 * is merged, and its piece readers wait for this before the first block (src/host/piece-reader.ts).
 */
export async function loadInodesLater(cacheFile: string, files: ManifestFiles): Promise<void> {
  // Never rejects: readers wait on it, and a cache that cannot be read is the same as none.
  await forEachCachedInodeAsync(cacheFile, merger(files)).catch(() => false)
}

function merger(files: ManifestFiles): CachedInodeVisitor {
  let j = 0
  return (buf, start, end, ino, size, mtimeMs) => {
    let k = -1
    let c = j < files.count ? compareAt(files, j, buf, start, end) : 1
    while (c < 0) {
      j++
      c = j < files.count ? compareAt(files, j, buf, start, end) : 1
    }
    if (c === 0) k = j++
    else if (j > 0 && compareAt(files, j - 1, buf, start, end) >= 0) k = search(files, j, buf, start, end)
    if (k < 0) return // not a content file of this generation
    files.inodes[k] = size === files.sizes[k] && Math.floor(mtimeMs / 1000) === files.mtimes[k] ? ino : NaN
  }
}

/** Content file k's escaped path against the cache line's, as bytes. */
function compareAt(files: ManifestFiles, k: number, buf: Buffer, start: number, end: number): number {
  return files.buf.compare(buf, start, end, files.pathStarts[k], files.pathEnds[k])
}

function search(files: ManifestFiles, below: number, buf: Buffer, start: number, end: number): number {
  let lo = 0
  let hi = below
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (compareAt(files, mid, buf, start, end) < 0) lo = mid + 1
    else hi = mid
  }
  return lo < below && compareAt(files, lo, buf, start, end) === 0 ? lo : -1
}
