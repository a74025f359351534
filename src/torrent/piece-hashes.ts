/**
 * SHA-1 piece hashes as a dsync torrent lays files out (src/torrent/layout.ts: every file on a
 * piece boundary, its last piece padded with zeros), for bytes in memory. gendsync's file
 * hashing (src/manifest/hash-file.ts) computes the same while it reads, with the SHA-256 beside.
 */
import { createHash, hash as oneShot } from 'node:crypto'

/** A torrent's piece hashes of one file's bytes (every file starts on a piece boundary). */
export interface PieceDigests {
  /** SHA-1 of each piece, 20 bytes apiece; the last piece is zero-padded (BEP 47 layout). */
  pieces: Buffer
  /**
   * SHA-1 of the last piece without padding, when the file does not end on a piece
   * boundary and it was asked for: the file that ends the torrent has a short last piece,
   * hashed as it is.
   */
  tail?: Buffer
}

/** The piece hashes of bytes in memory: what a torrent built over them needs (the index torrent, shard torrents). */
export function pieceHashes(data: Buffer, pieceLength: number, wantTail = true): PieceDigests {
  if (pieceLength === 0) return { pieces: Buffer.alloc(0) }
  const count = Math.ceil(data.length / pieceLength)
  const pieces = Buffer.allocUnsafe(count * 20)
  let tail: Buffer | undefined
  for (let i = 0; i < count; i++) {
    const slice = data.subarray(i * pieceLength, Math.min(data.length, (i + 1) * pieceLength))
    if (slice.length === pieceLength) {
      ;(oneShot('sha1', slice, 'buffer') as Buffer).copy(pieces, i * 20)
    } else {
      if (wantTail) tail = oneShot('sha1', slice, 'buffer') as Buffer
      createHash('sha1').update(slice).update(padZeros(pieceLength - slice.length)).digest().copy(pieces, i * 20)
    }
  }
  return tail ? { pieces, tail } : { pieces }
}

/**
 * pieceHashes of bytes whose previous version's piece hashes are known: a whole piece equal,
 * byte for byte, to the previous version's at the same offset keeps its hash. A hinted gendsync's
 * data.dsync differs from the previous one in a few lines; hashing all of it for the index torrent
 * (30 MB at 200k files) costs ~10x the compare. `previous.pieces`: the previous bytes' (padded) hashes.
 */
export function pieceHashesReusing(
  data: Buffer, previous: { data: Buffer; pieces: Buffer }, pieceLength: number, wantTail = true,
): PieceDigests {
  if (pieceLength === 0) return { pieces: Buffer.alloc(0) }
  const count = Math.ceil(data.length / pieceLength)
  const full = Math.floor(data.length / pieceLength)
  const known = Math.min(full, Math.floor(previous.data.length / pieceLength), Math.floor(previous.pieces.length / 20))
  const pieces = Buffer.allocUnsafe(count * 20)
  for (let i = 0; i < full; i++) {
    const from = i * pieceLength
    const to = from + pieceLength
    if (i < known && data.compare(previous.data, from, to, from, to) === 0) previous.pieces.copy(pieces, i * 20, i * 20, i * 20 + 20)
    else (oneShot('sha1', data.subarray(from, to), 'buffer') as Buffer).copy(pieces, i * 20)
  }
  if (full === count) return { pieces }
  const last = pieceHashes(data.subarray(full * pieceLength), pieceLength, wantTail)
  last.pieces.copy(pieces, full * 20)
  return last.tail ? { pieces, tail: last.tail } : { pieces }
}

let zeroBuffer = Buffer.alloc(0)

/** Pad bytes are zeros; one shared buffer, sliced, serves every file's tail. */
export function padZeros(n: number): Buffer {
  if (zeroBuffer.length < n) zeroBuffer = Buffer.alloc(n)
  return zeroBuffer.subarray(0, n)
}
