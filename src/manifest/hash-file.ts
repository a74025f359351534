import { createHash, hash as oneShot, type Hash } from 'node:crypto'
import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import { padZeros, pieceHashes, type PieceDigests } from '../torrent/piece-hashes.js'

/** What one read pass over a file yields: its SHA-256 and its torrent piece hashes. */
export interface FileDigest extends PieceDigests {
  sha256: Buffer
}

export interface FileIdentity {
  size: number
  mtimeMs: number
  ino: number
}

export class FileChangedError extends Error {
  constructor(readonly path: string | Buffer) {
    super(`${path} changed while it was being read`)
  }
}

const READ_SIZE = 1 << 20
let readBuffer: Buffer | undefined
/** Every byte of readBuffer from here on is zero: a small file's pad needs zeroing only up to it. */
let dirtyEnd = 0

/**
 * Reads `path` once and computes SHA-256 over the content and SHA-1 over each
 * `pieceLength` slice (0: no pieces). Because every file starts on a piece boundary in our
 * torrents, a file's piece hashes depend on nothing but the file, which is what makes
 * regeneration incremental. Synchronous on purpose: it runs in a worker thread, where
 * blocking reads beat a round trip through libuv's pool for each small file.
 *
 * One fstat after the read checks that the file is the one scanned (inode) and was not
 * changed before or during the read (size, mtime): a torn digest is never returned.
 */
export function hashFileSync(path: string | Buffer, expect: FileIdentity, pieceLength: number, wantTail = false): FileDigest {
  return hashOpened(path, expect, pieceLength, wantTail, undefined)!
}

/**
 * Where hashFileInto writes a file's digests, as bytes at these offsets (hash-table.ts's shared
 * tables). The tail hash goes to `tails` only when asked for.
 */
export interface DigestSink {
  sha256: Buffer
  sha256At: number
  pieces: Buffer
  piecesAt: number
  tails: Buffer
  tailAt: number
}

/**
 * hashFileSync writing the digests into `sink` instead of returning them: a full gendsync's
 * workers (hash-table.ts). A small file's digests are taken from crypto as latin1 strings and
 * written in place, not as a Buffer each ('binary' is latin1: one char a byte): a Buffer from C++ is a backing store malloc'ed, set
 * up and later swept and freed, ~3 us of CPU per file at 200k files, 0.6 s in all (measured
 * against a latin1 string: docs/SCALE.md, session 24). What it wrote is meaningful only when
 * it returns: a file that changed while read throws, after its digests may have been written.
 */
export function hashFileInto(path: string | Buffer, expect: FileIdentity, pieceLength: number, wantTail: boolean, sink: DigestSink): void {
  hashOpened(path, expect, pieceLength, wantTail, sink)
}

/** hashFileSync's read and check; the digests returned, or written into `sink` when given (undefined then). */
function hashOpened(path: string | Buffer, expect: FileIdentity, pieceLength: number, wantTail: boolean, sink: DigestSink | undefined): FileDigest | undefined {
  const fd = openSync(path, 'r')
  try {
    const buf = (readBuffer ??= Buffer.alloc(READ_SIZE + 1))
    let digest: FileDigest | undefined
    if (expect.size <= READ_SIZE) {
      // Most mirror files: one read of size+1 bytes, whose shortness proves end of file.
      // A read of a regular file comes back short only at its end, so a small file takes one
      // read, not a second one that returns 0 (200k syscalls at mirror scale); a file that
      // grows after it is caught by the fstat below.
      let total = 0
      for (;;) {
        const want = expect.size + 1 - total
        const n = readSync(fd, buf, total, want, null)
        total += n
        dirtyEnd = Math.max(dirtyEnd, total)
        if (total > expect.size) throw new FileChangedError(path)
        if (n === 0 || n < want) break
      }
      if (total !== expect.size) throw new FileChangedError(path)
      if (!sink || !digestReadBufferInto(buf, total, pieceLength, wantTail, sink)) digest = digestReadBuffer(buf, total, pieceLength, wantTail)
    } else {
      const hasher = new PieceHasher(pieceLength, expect.size, wantTail)
      let total = 0
      for (;;) {
        const n = readSync(fd, buf, 0, READ_SIZE, null)
        dirtyEnd = Math.max(dirtyEnd, n)
        if (n === 0) break
        total += n
        if (total > expect.size) throw new FileChangedError(path)
        hasher.update(buf.subarray(0, n))
      }
      if (total !== expect.size) throw new FileChangedError(path)
      digest = hasher.digest()
    }
    const after = fstatSync(fd)
    if (after.size !== expect.size || after.mtimeMs !== expect.mtimeMs || after.ino !== expect.ino) {
      throw new FileChangedError(path)
    }
    if (sink && digest) {
      digest.sha256.copy(sink.sha256, sink.sha256At)
      digest.pieces.copy(sink.pieces, sink.piecesAt)
      digest.tail?.copy(sink.tails, sink.tailAt)
      return undefined
    }
    return digest
  } finally {
    closeSync(fd)
  }
}

/** The same digests for bytes in memory (data.dsync itself, small files). */
export function hashBuffer(data: Buffer, pieceLength: number, wantTail = true): FileDigest {
  return digestBuffer(data, pieceLength, wantTail)
}

function digestBuffer(data: Buffer, pieceLength: number, wantTail: boolean): FileDigest {
  const sha256 = oneShot('sha256', data, 'buffer') as Buffer
  return { sha256, ...pieceHashes(data, pieceLength, wantTail) }
}

/**
 * digestBuffer for the read buffer, which this module owns: the last piece is zero-padded in
 * place and hashed in one call. At 200k small files that replaced a hasher object and three
 * calls per file (the padded piece is 16 KiB of hashing for a 1 KB file either way).
 */
function digestReadBuffer(buf: Buffer, size: number, pieceLength: number, wantTail: boolean): FileDigest {
  const count = pieceLength === 0 ? 0 : Math.ceil(size / pieceLength)
  const sha256 = Buffer.allocUnsafe(32)
  const pieces = Buffer.allocUnsafe(count * 20)
  const tail = wantTail ? Buffer.allocUnsafe(20) : undefined
  // Without wantTail nothing is written to `tails`.
  const sink: DigestSink = { sha256, sha256At: 0, pieces, piecesAt: 0, tails: tail ?? sha256, tailAt: 0 }
  if (!digestReadBufferInto(buf, size, pieceLength, wantTail, sink)) return digestBuffer(buf.subarray(0, size), pieceLength, wantTail)
  return tail ? { sha256, pieces, tail } : { sha256, pieces }
}

/**
 * The read buffer's digests written into `sink` (latin1 strings from crypto, see hashFileInto);
 * false, with nothing written, for a file whose padded last piece does not fit the read buffer
 * or that ends on a piece boundary (digestBuffer's path then).
 */
function digestReadBufferInto(buf: Buffer, size: number, pieceLength: number, wantTail: boolean, sink: DigestSink): boolean {
  const rest = pieceLength === 0 ? 0 : size % pieceLength
  const end = size - rest + pieceLength
  if (rest === 0 || end > buf.length) return false
  sink.sha256.write(oneShot('sha256', buf.subarray(0, size), 'binary'), sink.sha256At, 'latin1')
  const count = Math.ceil(size / pieceLength)
  for (let i = 0; i < count - 1; i++) {
    sink.pieces.write(oneShot('sha1', buf.subarray(i * pieceLength, (i + 1) * pieceLength), 'binary'), sink.piecesAt + i * 20, 'latin1')
  }
  if (wantTail) sink.tails.write(oneShot('sha1', buf.subarray(size - rest, size), 'binary'), sink.tailAt, 'latin1')
  // Zero only what an earlier, longer file left there (a 1 KB file after 1 KB files: ~nothing).
  if (dirtyEnd > size) buf.fill(0, size, Math.min(end, dirtyEnd))
  if (dirtyEnd <= end) dirtyEnd = size
  sink.pieces.write(oneShot('sha1', buf.subarray(size - rest, end), 'binary'), sink.piecesAt + (count - 1) * 20, 'latin1')
  return true
}

class PieceHasher {
  private readonly whole = createHash('sha256')
  private piece: Hash | undefined
  private inPiece = 0
  private readonly pieces: Buffer
  private count = 0

  constructor(private readonly pieceLength: number, size: number, private readonly wantTail: boolean) {
    this.pieces = Buffer.allocUnsafe(pieceLength > 0 ? Math.ceil(size / pieceLength) * 20 : 0)
  }

  update(chunk: Buffer): void {
    this.whole.update(chunk)
    const P = this.pieceLength
    if (P === 0) return
    let offset = 0
    while (offset < chunk.length) {
      const take = Math.min(P - this.inPiece, chunk.length - offset)
      ;(this.piece ??= createHash('sha1')).update(chunk.subarray(offset, offset + take))
      this.inPiece += take
      offset += take
      if (this.inPiece === P) this.closePiece()
    }
  }

  digest(): FileDigest {
    let tail: Buffer | undefined
    if (this.piece) {
      if (this.wantTail) tail = this.piece.copy().digest()
      this.piece.update(padZeros(this.pieceLength - this.inPiece))
      this.closePiece()
    }
    if (this.count * 20 !== this.pieces.length) throw new Error('piece count mismatch')
    const sha256 = this.whole.digest()
    return tail ? { sha256, pieces: this.pieces, tail } : { sha256, pieces: this.pieces }
  }

  private closePiece(): void {
    this.piece!.digest().copy(this.pieces, this.count++ * 20)
    this.piece = undefined
    this.inPiece = 0
  }
}
