import { appendFileSync, closeSync, openSync, readFileSync, readSync } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { escapePath, unescapePath } from './escape.js'
import { base64Length, writeBase64, writeDecimal, writeHex } from '../util/digits.js'
import { writeFileAtomic } from '../util/atomic-write.js'
import type { DurableBatch } from '../util/durable-batch.js'
import { readDecimal } from '../util/decimal.js'

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

/** Called per cache line with the path's bytes (escaped as written) and the inode, size, mtime (ms). */
export type CachedInodeVisitor = (buf: Buffer, pathStart: number, pathEnd: number, ino: number, size: number, mtimeMs: number) => void

/**
 * Only the inode, size and mtime of each line, in file order (a later line for a path
 * replaces an earlier one): what a host needs to tell the file gendsync hashed from another
 * one of the same size and mtime. Read in chunks, nothing decoded but three numbers per line,
 * no string per path: a 1M-file cache is ~190 MB. False when there is no usable cache.
 */
export function forEachCachedInode(file: string, visit: CachedInodeVisitor): boolean {
  let fd: number
  try {
    fd = openSync(file, 'r')
  } catch {
    return false
  }
  try {
    const scan = new InodeScanner(visit)
    for (;;) {
      const n = readSync(fd, scan.buf, scan.have, scan.buf.length - scan.have, null)
      if (n === 0 || !scan.took(n)) return scan.ok
    }
  } finally {
    closeSync(fd)
  }
}

/**
 * The same, reading with promises and yielding between chunks, so a host answers while it
 * loads (src/host/inodes.ts). Resolves false when there is no usable cache or a read fails.
 */
export async function forEachCachedInodeAsync(file: string, visit: CachedInodeVisitor): Promise<boolean> {
  let fh: FileHandle
  try {
    fh = await open(file, 'r')
  } catch {
    return false
  }
  try {
    const scan = new InodeScanner(visit)
    for (;;) {
      const { bytesRead } = await fh.read(scan.buf, scan.have, scan.buf.length - scan.have, null)
      if (bytesRead === 0 || !scan.took(bytesRead)) return scan.ok
    }
  } catch {
    return false
  } finally {
    await fh.close()
  }
}

/** Cuts what was read into lines; the caller reads into `buf` from `have` on. */
class InodeScanner {
  buf = Buffer.allocUnsafe(CHUNK)
  have = 0
  ok = true
  private at = -1

  constructor(private readonly visit: CachedInodeVisitor) {}

  /** `n` more bytes are in `buf`: visits every complete line. False to stop (a bad head). */
  took(n: number): boolean {
    this.have += n
    const buf = this.buf
    if (this.at < 0) {
      const head = buf.indexOf(0x0a)
      if (head < 0 || head >= this.have) return true // the head line is not complete yet
      this.ok = buf.toString('utf8', 0, head).startsWith(MAGIC + ' ')
      if (!this.ok) return false
      this.at = head + 1
    }
    for (;;) {
      const nl = buf.indexOf(0x0a, this.at)
      if (nl < 0 || nl >= this.have) break
      inodeLine(buf, this.at, nl, this.visit)
      this.at = nl + 1
    }
    // Move the partial line to the front; a line longer than the buffer grows it.
    const rest = this.have - this.at
    if (rest === buf.length) this.buf = Buffer.concat([buf, Buffer.allocUnsafe(buf.length)])
    buf.copy(this.buf, 0, this.at, this.have)
    this.have = rest
    this.at = 0
    return true
  }
}

const CHUNK = 8 << 20
const fieldEnds = new Int32Array(4)

/**
 * `ino size mtimeMs ctimeMs sha256 pieces tail path`: the first three and the last field.
 * The line must have cacheLine's shape (a 64-digit sha256, a 0- or 40-digit tail, eight
 * fields), checked by position rather than by scanning the pieces: a line damaged by a
 * crash during an append, or two run together, is skipped and never lends a path an inode.
 */
function inodeLine(buf: Buffer, at: number, end: number, visit: CachedInodeVisitor): void {
  let p = at
  for (let f = 0; f < 4; f++) {
    while (p < end && buf[p] !== 0x09) p++
    if (p >= end) return
    fieldEnds[f] = p++
  }
  // p: the sha256's first digit
  if (p + 64 >= end || buf[p + 64] !== 0x09) return
  const piecesEnd = buf.indexOf(0x09, p + 65)
  const pathAt = buf.lastIndexOf(0x09, end - 1) + 1
  if (piecesEnd < 0 || piecesEnd >= end) return
  const tail = pathAt - 1 - (piecesEnd + 1)
  if (tail !== 0 && tail !== 40) return
  visit(buf, pathAt, end, readDecimal(buf, at, fieldEnds[0]), readDecimal(buf, fieldEnds[0] + 1, fieldEnds[1]), readDecimal(buf, fieldEnds[1] + 1, fieldEnds[2]))
}


export function saveHashCache(file: string, pieceLength: number, entries: Iterable<[string, CachedDigest]>): void {
  const w = new HashCacheWriter(pieceLength, 1 << 16)
  for (const [path, e] of entries) w.line(path, e, e.sha256, 0, e.pieces, 0, e.pieces.length, e.tail, 0)
  w.save(file)
}

/**
 * The cache file written front to back into one buffer, a line per call (cacheLine's
 * bytes): a full gendsync writes its 200k lines from digest tables with no object or string
 * array per line. Digests are given as (bytes, offset); `tail` undefined: no tail hash.
 */
export class HashCacheWriter {
  private buf: Buffer
  private at = 0

  constructor(pieceLength: number, sizeHint: number) {
    this.buf = Buffer.allocUnsafe(Math.max(sizeHint, 1024))
    this.at = this.buf.write(`${MAGIC} ${pieceLength}\n`, 0, 'latin1')
  }

  /**
   * One line; `path` as a string, or as its bytes already escaped (data.dsync's path field).
   * shaAt < 0: digests not known yet, their room left for fill(). Returns where its hex SHA-256 starts.
   */
  line(
    path: string | Uint8Array, id: { ino: number; size: number; mtimeMs: number; ctimeMs: number },
    sha256: Uint8Array, shaAt: number, pieces: Uint8Array, piecesFrom: number, piecesTo: number, tail: Uint8Array | undefined, tailAt: number,
  ): number {
    this.reserve(path.length * 3 + base64Length(piecesTo - piecesFrom) + 240)
    const b = this.buf
    this.at = writeDecimal(b, this.at, id.ino)
    b[this.at++] = 0x09
    this.at = writeDecimal(b, this.at, id.size)
    b[this.at++] = 0x09
    this.at = writeDecimal(b, this.at, id.mtimeMs)
    b[this.at++] = 0x09
    this.at = writeDecimal(b, this.at, id.ctimeMs)
    b[this.at++] = 0x09
    const shaHexAt = this.at
    if (shaAt >= 0) this.fill(shaHexAt, sha256, shaAt, pieces, piecesFrom, piecesTo, tail, tailAt)
    this.at += 64 + 1 + base64Length(piecesTo - piecesFrom) + 1 + (tail ? 40 : 0)
    b[this.at++] = 0x09
    if (typeof path === 'string') this.at += b.write(escapePath(path), this.at, 'utf8')
    else for (let i = 0; i < path.length; i++) b[this.at++] = path[i]
    b[this.at++] = 0x0a
    return shaHexAt
  }

  /** The digest fields of the line whose hex SHA-256 starts at `at` (line()'s answer), written again. */
  fill(at: number, sha256: Uint8Array, shaAt: number, pieces: Uint8Array, piecesFrom: number, piecesTo: number, tail: Uint8Array | undefined, tailAt: number): void {
    const b = this.buf
    at = writeHex(b, at, sha256, shaAt, 32)
    b[at++] = 0x09
    at = writeBase64(b, at, pieces, piecesFrom, piecesTo - piecesFrom)
    b[at++] = 0x09
    if (tail) writeHex(b, at, tail, tailAt, 20)
  }

  save(file: string): void {
    writeFileAtomic(file, this.buf.subarray(0, this.at))
  }

  /** Written beside gendsync's other outputs (durable-batch.ts). */
  stage(batch: DurableBatch, file: string): void {
    batch.add(file, this.buf.subarray(0, this.at))
  }

  private reserve(n: number): void {
    if (this.at + n <= this.buf.length) return
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n))
    this.buf.copy(next, 0, 0, this.at)
    this.buf = next
  }
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
