/**
 * One line of data.dsync. Paths are relative to the repository root, '/'-separated,
 * never starting with '/' and never containing '.' or '..' segments.
 */
export type EntryType = 'f' | 'd' | 'l' | 'h'

export interface ManifestEntry {
  type: EntryType
  path: string
  /** Permission bits (07777). Symlinks record 0777. */
  mode: number
  /** Bytes; 0 for directories; the target's byte length for symlinks. */
  size: number
  /** Modification time in whole seconds since the epoch (what rsync -a preserves everywhere). */
  mtime: number
  /** SHA-256 of the content: files and hardlinks only. */
  sha256?: Buffer
  /** Symlinks: the link target, verbatim. Hardlinks: the path of the file it shares an inode with. */
  target?: string
}

/** data.dsync's own header fields. */
export interface ManifestHeader {
  version: 1
  /** The torrent's piece length, a pure function of the tree (see torrent/layout.ts). */
  pieceLength: number
  entries: number
  files: number
  bytes: number
}

/**
 * The total order of data.dsync: the paths' UTF-8 bytes compared. JavaScript's string
 * comparison orders UTF-16 code units, which differs above U+FFFF, so it is not used.
 */
export function comparePaths(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

export function sortEntries<T extends { path: string }>(entries: T[]): T[] {
  // Without characters above U+FFFF, UTF-16 order is code point order, which is UTF-8 byte
  // order: the strings compare as they are, with no buffer per path (a 200k-entry walk).
  if (!entries.some(e => SURROGATE.test(e.path))) return entries.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0))
  const keyed = entries.map(e => ({ e, k: Buffer.from(e.path, 'utf8') }))
  keyed.sort((x, y) => Buffer.compare(x.k, y.k))
  return keyed.map(x => x.e)
}

const SURROGATE = /[\uD800-\uDFFF]/

/** True for a path a manifest or torrent may name: relative, no '.'/'..'/empty segments, no NUL. */
export function isSafeRelativePath(path: string): boolean {
  if (path === '' || path.startsWith('/') || path.includes('\0')) return false
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') return false
  }
  return true
}
