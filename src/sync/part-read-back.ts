import { createHash } from 'node:crypto'
import { closeSync, openSync, readSync } from 'node:fs'
import { fileSpans, type PieceMap, type PieceSpan } from '../torrent/piece-map.js'

/**
 * The pieces of file `index` whose bytes in its `.part` (at `path`) fail their SHA-1 against
 * the torrent's `hashes`, pad zeros included. Called when a file whose pieces came unchecked
 * (the downloader's checkedBySink) failed its SHA-256: the SHA-1 of each piece is what names
 * the peer that sent a bad one. Rare (a bad peer, or data.dsync disagreeing with the torrent),
 * so read on the event loop, one piece at a time: a file checked this way is at most
 * UNCHECKED_MAX_BYTES (transfer.ts). A `.part` shorter than the file reads as zeros there.
 */
export function badPieces(path: string, map: PieceMap, index: number, hashes: Buffer): PieceSpan[] {
  const bad: PieceSpan[] = []
  const buf = Buffer.alloc(map.pieceLength)
  const fd = openSync(path, 'r')
  try {
    for (const span of fileSpans(map, index)) {
      const data = buf.subarray(0, span.pieceLength)
      data.fill(0)
      let done = 0
      while (done < span.dataLength) {
        const n = readSync(fd, data, done, span.dataLength - done, span.fileOffset + done)
        if (n === 0) break
        done += n
      }
      // The piece's pad zeros are the rest of `data`, zeroed above.
      const digest = createHash('sha1').update(data).digest()
      if (!digest.equals(hashes.subarray(span.piece * 20, span.piece * 20 + 20))) bad.push(span)
    }
  } finally {
    closeSync(fd)
  }
  return bad
}
