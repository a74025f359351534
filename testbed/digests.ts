import { createHash } from 'node:crypto'

/** A file's digests by their definition: SHA-256 of the bytes, SHA-1 of each zero-padded piece, the last piece unpadded. */
export function referenceDigests(data: Buffer, pieceLength: number): { sha256: Buffer; pieces: Buffer; tail?: Buffer } {
  const pieces: Buffer[] = []
  let tail: Buffer | undefined
  for (let at = 0; at < data.length; at += pieceLength) {
    const slice = data.subarray(at, at + pieceLength)
    pieces.push(createHash('sha1').update(slice).update(Buffer.alloc(pieceLength - slice.length)).digest())
    if (slice.length < pieceLength) tail = createHash('sha1').update(slice).digest()
  }
  return { sha256: createHash('sha256').update(data).digest(), pieces: Buffer.concat(pieces), tail }
}
