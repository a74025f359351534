/**
 * The piece layout of a dsync torrent. Every file starts on a piece boundary: a BEP 47 pad
 * file follows each file whose length is not a multiple of the piece length. Two things
 * follow from that:
 *  - a changed file maps to pieces of its own, so a client fetches it without pulling
 *    bytes of unchanged neighbours (pad bytes are known zeros and never need the network);
 *  - a file's piece hashes depend on its content alone, so regeneration only reads changed
 *    files and reassembles the rest from the cache.
 * docs/ARCHITECTURE.md records the measurements behind the choice.
 */
/**
 * The folder gendsync keeps its outputs in under a repository's root, and data.dsync's path
 * inside the torrent: the torrent's first file, so a magnet link alone reaches it.
 * src/manifest/paths.ts names the rest of what lives under DSYNC_DIR.
 */
export const DSYNC_DIR = '.dsync'
export const MANIFEST_NAME = 'data.dsync'
export const MANIFEST_TORRENT_PATH = `${DSYNC_DIR}/${MANIFEST_NAME}`

export const MIN_PIECE_LENGTH = 1 << 14
export const MAX_PIECE_LENGTH = 1 << 24
/** Pieces the content (not counting per-file rounding) is cut into, at most, before the length doubles. */
export const TARGET_PIECES = 1 << 15

/** A pure function of the tree's total file bytes, so every host picks the same. */
export function pieceLengthFor(totalBytes: number): number {
  let p = MIN_PIECE_LENGTH
  while (p < MAX_PIECE_LENGTH && totalBytes / p > TARGET_PIECES) p *= 2
  return p
}

export interface LayoutInput {
  path: string
  length: number
}

export interface LayoutFile {
  path: string
  length: number
  /** BEP 47 pad file (all zeros, never stored on disk). */
  pad: boolean
  /** Byte offset in the torrent's concatenated content. */
  offset: number
}

/** Files in torrent order with pad files inserted; the last file is never padded. */
export function layoutFiles(files: LayoutInput[], pieceLength: number): LayoutFile[] {
  const out: LayoutFile[] = []
  let offset = 0
  files.forEach((f, i) => {
    out.push({ path: f.path, length: f.length, pad: false, offset })
    offset += f.length
    const rest = f.length % pieceLength
    if (rest !== 0 && i < files.length - 1) {
      const padLength = pieceLength - rest
      out.push({ path: padPath(padLength), length: padLength, pad: true, offset })
      offset += padLength
    }
  })
  return out
}

/** BEP 47 names pad files `.pad/<length>`, as libtorrent writes them. */
export function padPath(length: number): string {
  return `.pad/${length}`
}

export function piecesOf(length: number, pieceLength: number): number {
  return Math.ceil(length / pieceLength)
}
