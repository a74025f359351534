import { appendFileSync, closeSync, openSync, readFileSync, readSync } from 'node:fs'
import { escapePath, unescapePath } from './escape.js'
import { writeFileAtomic } from '../util/atomic-write.js'

/**
 * What the last generation learnt about each file: enough to skip re-reading a file whose
 * size, mtime and inode have not changed. It lives beside data.dsync (`.dsync/hashcache`),
 * is never published, and a damaged one is ignored (costing one full re-hash, nothing more).
 */
export interface CachedDigest {
  size: number
  mtimeMs: number
  ctimeMs: number
  ino: number
  sha256: Buffer
  pieces: Buffer
  /** Unpadded hash of the last piece (see FileDigest.tail). */
  tail?: Buffer
}

const MAGIC = 'DSYNC-HASHCACHE 3'

export interface LoadedCache {
  entries: Map<string, CachedDigest>
  /** Set when the cache was made for another piece length: every digest in it is void. */
  previousPieceLength?: number
}

export function loadHashCache(file: string, pieceLength: number): LoadedCache {
  const cache = new Map<string, CachedDigest>()
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return { entries: cache }
  }
  const lines = text.split('\n')
  const head = lines[0].split(' ')
  if (`${head[0]} ${head[1]}` !== MAGIC) return { entries: cache }
  if (Number(head[2]) !== pieceLength) return { entries: cache, previousPieceLength: Number(head[2]) }
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i].split('\t')
    if (f.length !== 8) continue
    const path = unescapePath(f[7])
    if (path === undefined) continue
    const entry: CachedDigest = {
      ino: Number(f[0]), size: Number(f[1]), mtimeMs: Number(f[2]), ctimeMs: Number(f[3]),
      sha256: Buffer.from(f[4], 'hex'), pieces: Buffer.from(f[5], 'base64'),
    }
    if (f[6] !== '') entry.tail = Buffer.from(f[6], 'hex')
    // A tail is kept only for a file that ended the torrent once; it is optional.
    const tailOk = entry.tail === undefined || (entry.size % pieceLength !== 0 && entry.tail.length === 20)
    if (entry.sha256.length !== 32 || entry.pieces.length !== Math.ceil(entry.size / pieceLength) * 20 || !tailOk) continue
    cache.set(path, entry)
  }
  return { entries: cache }
}

/**
 * Only the inode, size and mtime of each path: what a host needs to tell the file gendsync
 * hashed from another one of the same size and mtime (hashes are not decoded).
 */
export function loadHashCacheInodes(file: string): Map<string, { ino: number; size: number; mtimeMs: number }> {
  const out = new Map<string, { ino: number; size: number; mtimeMs: number }>()
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return out
  }
  const lines = text.split('\n')
  if (!lines[0].startsWith(MAGIC + ' ')) return out
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i].split('\t')
    if (f.length !== 8) continue
    const path = unescapePath(f[7])
    if (path !== undefined) out.set(path, { ino: Number(f[0]), size: Number(f[1]), mtimeMs: Number(f[2]) })
  }
  return out
}

export function saveHashCache(file: string, pieceLength: number, entries: Iterable<[string, CachedDigest]>): void {
  const parts = [`${MAGIC} ${pieceLength}\n`]
  for (const [path, e] of entries) parts.push(cacheLine(path, e))
  writeFileAtomic(file, parts.join(''))
}

/**
 * Adds digests to the cache without rewriting it (gendsync with a change hint): a later line
 * for a path replaces an earlier one when the cache is loaded, and the next full run writes
 * the cache afresh. A cache of another piece length is replaced by these entries alone.
 */
export function appendHashCache(file: string, pieceLength: number, entries: Iterable<[string, CachedDigest]>): void {
  let head = ''
  try {
    const fd = openSync(file, 'r')
    try {
      const buf = Buffer.alloc(64)
      head = buf.toString('utf8', 0, readSync(fd, buf, 0, 64, 0)).split('\n')[0]
    } finally {
      closeSync(fd)
    }
  } catch {
    // no cache yet
  }
  if (head !== `${MAGIC} ${pieceLength}`) return saveHashCache(file, pieceLength, entries)
  const lines: string[] = []
  for (const [path, e] of entries) lines.push(cacheLine(path, e))
  if (lines.length > 0) appendFileSync(file, lines.join(''))
}

function cacheLine(path: string, e: CachedDigest): string {
  return `${e.ino}\t${e.size}\t${e.mtimeMs}\t${e.ctimeMs}\t${e.sha256.toString('hex')}\t${e.pieces.toString('base64')}\t${e.tail?.toString('hex') ?? ''}\t${escapePath(path)}\n`
}
