import { createHash } from 'node:crypto'
import { closeSync, openSync, readSync } from 'node:fs'
import { join } from 'node:path'
import { unescapePath } from '../manifest/escape.js'
import { buildTorrent, type BuiltTorrent } from '../torrent/build.js'
import { layoutFiles, type LayoutFile } from '../torrent/layout.js'
import type { TorrentShape } from '../torrent/match.js'
import type { Delta } from './delta.js'

/** A file with content that a delta adds or changes: what its torrent carries. */
export interface DeltaFile {
  path: string
  size: number
  mtime: number
  sha256: string
}

/** The delta's `f` upserts with content, in delta (path) order: the delta torrent's files. */
export function deltaFiles(delta: Delta): DeltaFile[] {
  const out: DeltaFile[] = []
  for (const line of delta.lines) {
    if (!line.startsWith('f\t')) continue
    const f = line.split('\t')
    const size = Number(f[2])
    if (size === 0) continue
    out.push({ path: unescapePath(f[5]) ?? '', size, mtime: Number(f[3]), sha256: f[4] })
  }
  return out
}

export function deltaLayout(files: DeltaFile[], pieceLength: number): LayoutFile[] {
  return layoutFiles(files.map(f => ({ path: f.path, length: f.size })), pieceLength)
}

/**
 * The torrent of a delta's changed files, laid out like the repository torrent (each file on
 * a piece boundary, so its piece hashes are the file's own and come from gendsync's cache).
 * `piecesOf` gives a file's zero-padded piece hashes; the torrent's last file has a short last
 * piece, hashed unpadded from disk here. Undefined when the delta changes no content.
 */
export function buildDeltaTorrent(
  repo: string, delta: Delta, save: string, trackers: string[], piecesOf: (path: string) => Buffer,
): BuiltTorrent | undefined {
  const files = deltaFiles(delta)
  if (files.length === 0) return undefined
  const pieceLength = delta.pieceLength
  const pieces = Buffer.concat(files.map(f => piecesOf(f.path)))
  const last = files[files.length - 1]
  const rest = last.size % pieceLength
  if (rest !== 0) unpaddedTail(join(save, last.path), last.size - rest, rest).copy(pieces, pieces.length - 20)
  return buildTorrent({ name: repo, pieceLength, files: deltaLayout(files, pieceLength), pieces, trackers })
}

/** SHA-1 of a file's short last piece as it is (the torrent's last piece is not padded). */
export function unpaddedTail(file: string, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(length)
  const fd = openSync(file, 'r')
  try {
    let done = 0
    while (done < length) {
      const n = readSync(fd, buf, done, length - done, offset + done)
      if (n === 0) throw new Error(`${file}: shorter than data.dsync says`)
      done += n
    }
  } finally {
    closeSync(fd)
  }
  return createHash('sha1').update(buf).digest()
}

/** The torrent must list exactly the delta's files in the layout rule's order; else the reason. */
export function matchTorrentToDelta(info: TorrentShape & { name: string }, delta: Delta, repo: string): LayoutFile[] | string {
  if (info.name !== repo) return `torrent name "${info.name}", expected "${repo}"`
  if (info.pieceLength !== delta.pieceLength) return `piece length ${info.pieceLength}, the delta says ${delta.pieceLength}`
  const layout = deltaLayout(deltaFiles(delta), delta.pieceLength)
  if (info.files.length !== layout.length) return `the torrent lists ${info.files.length} files, the delta implies ${layout.length}`
  for (let i = 0; i < layout.length; i++) {
    const a = layout[i]
    const b = info.files[i]
    if (a.length !== b.length || a.pad !== b.pad || (!a.pad && a.path !== b.path)) return `torrent file ${i} is "${b.path}", the delta implies "${a.path}"`
  }
  const last = layout[layout.length - 1]
  if (info.pieces.length !== Math.ceil((last.offset + last.length) / delta.pieceLength) * 20) return 'piece count does not match the layout'
  return layout
}
