import { createHash, hash as oneShot } from 'node:crypto'
import { END_LINE_BYTES } from '../manifest/format.js'
import { pieceHashes } from '../manifest/hash-file.js'
import type { HashedPart } from '../torrent/shards.js'
import { writeHex } from '../util/digits.js'

/**
 * A full run's data.dsync sealed in pieces: its END checksum, its SHA-256 (the record's) and its
 * piece hashes as the index torrent's first file, taken over each stretch of the list as soon as
 * the stretch is final (every digest in it filled in), while the workers still hash. Done after
 * the last file instead, they were ~3 passes over 30 MB at 200k files (the END line's SHA-256,
 * the record's SHA-256, the index's SHA-1s) on one core with the other idle.
 */
export class ListSeal {
  private readonly sha = createHash('sha256')
  private hashed = 0
  private readonly pieces: Buffer
  private piecesDone = 0
  private readonly body: number

  constructor(private readonly list: Buffer, private readonly pieceLength: number) {
    this.pieces = Buffer.allocUnsafe(Math.ceil(list.length / pieceLength) * 20)
    this.body = list.length - END_LINE_BYTES
  }

  /** Bytes [0, to) of the list will not change again (the END line excepted). */
  final(to: number): void {
    const end = Math.min(to, this.body)
    if (end > this.hashed) {
      this.sha.update(this.list.subarray(this.hashed, end))
      this.hashed = end
    }
    const P = this.pieceLength
    for (; (this.piecesDone + 1) * P <= end; this.piecesDone++) {
      const at = this.piecesDone * P
      ;(oneShot('sha1', this.list.subarray(at, at + P), 'buffer') as Buffer).copy(this.pieces, this.piecesDone * 20)
    }
  }

  /** The END line written (the body's SHA-256, as ManifestWriter.finish writes it); the list's SHA-256 and its padded piece hashes. */
  finish(): { sha256: string; listPieces: HashedPart } {
    this.final(this.body)
    writeHex(this.list, this.body + 4, this.sha.copy().digest(), 0, 32)
    const sha256 = this.sha.update(this.list.subarray(this.body)).digest('hex')
    const P = this.pieceLength
    pieceHashes(this.list.subarray(this.piecesDone * P), P, false).pieces.copy(this.pieces, this.piecesDone * 20)
    return { sha256, listPieces: { length: this.list.length, pieces: this.pieces } }
  }
}
