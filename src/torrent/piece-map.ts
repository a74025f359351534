import type { LayoutFile } from './layout.js'

/**
 * Where each piece's bytes live. In a dsync torrent every file starts on a piece boundary,
 * so a piece holds bytes of exactly one file (data.dsync or a content file) followed,
 * possibly, by pad zeros: the client requests `dataLength` bytes and pads the rest itself.
 */
export interface PieceSpan {
  piece: number
  /** Index into the layout's non-pad files. */
  file: number
  /** Offset of the piece's first byte inside that file. */
  fileOffset: number
  /** Bytes of the file in this piece; the piece's remaining bytes are pad zeros. */
  dataLength: number
  /** The piece's full length (the torrent's last piece may be short). */
  pieceLength: number
}

export interface PieceMap {
  pieceLength: number
  totalLength: number
  pieceCount: number
  /** Non-pad files in torrent order: index 0 is data.dsync. */
  files: { path: string; length: number; offset: number; firstPiece: number; pieceCount: number }[]
}

export function pieceMap(layout: LayoutFile[], pieceLength: number): PieceMap {
  const files: PieceMap['files'] = []
  for (const f of layout) {
    if (f.pad) continue
    if (f.offset % pieceLength !== 0 && f.length > 0) throw new Error(`${f.path} does not start on a piece boundary`)
    files.push({ path: f.path, length: f.length, offset: f.offset, firstPiece: f.offset / pieceLength, pieceCount: Math.ceil(f.length / pieceLength) })
  }
  const last = layout[layout.length - 1]
  const totalLength = last ? last.offset + last.length : 0
  return { pieceLength, totalLength, pieceCount: Math.ceil(totalLength / pieceLength), files }
}

/** The spans of every piece of file `index`. */
export function fileSpans(map: PieceMap, index: number): PieceSpan[] {
  const f = map.files[index]
  const out: PieceSpan[] = []
  for (let i = 0; i < f.pieceCount; i++) {
    const piece = f.firstPiece + i
    const fileOffset = i * map.pieceLength
    out.push({
      piece, file: index, fileOffset,
      dataLength: Math.min(map.pieceLength, f.length - fileOffset),
      pieceLength: Math.min(map.pieceLength, map.totalLength - piece * map.pieceLength),
    })
  }
  return out
}
