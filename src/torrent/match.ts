import type { Manifest } from '../manifest/format.js'
import { MANIFEST_TORRENT_PATH } from '../manifest/paths.js'
import { layoutFiles, type LayoutFile } from './layout.js'

export interface TorrentShape {
  pieceLength: number
  pieces: Buffer
  files: { path: string; length: number; pad: boolean }[]
}

/**
 * The torrent must describe exactly the bytes data.dsync describes: the same files in the
 * same order, with the pads the layout rule implies, and one hash per piece. Returns the
 * layout, or the reason they differ (a torrent of another generation, or a forgery).
 */
export function matchTorrentToManifest(info: TorrentShape, manifest: Manifest, manifestLength: number): LayoutFile[] | string {
  const pieceLength = manifest.header.pieceLength
  if (info.pieceLength !== pieceLength) return `piece length ${info.pieceLength} differs from data.dsync's ${pieceLength}`
  const content = manifest.entries.filter(e => e.type === 'f' && e.size > 0)
  const layout = layoutFiles(
    [{ path: MANIFEST_TORRENT_PATH, length: manifestLength }, ...content.map(e => ({ path: e.path, length: e.size }))],
    pieceLength,
  )
  if (info.files.length !== layout.length) return `the torrent lists ${info.files.length} files, data.dsync implies ${layout.length}`
  for (let i = 0; i < layout.length; i++) {
    const a = layout[i]
    const b = info.files[i]
    if (a.length !== b.length || a.pad !== b.pad || (!a.pad && a.path !== b.path)) {
      return `torrent file ${i} is "${b.path}" (${b.length} bytes), data.dsync implies "${a.path}" (${a.length} bytes)`
    }
  }
  const last = layout[layout.length - 1]
  const pieceCount = Math.ceil((last.offset + last.length) / pieceLength)
  if (info.pieces.length !== pieceCount * 20) return `the torrent has ${info.pieces.length / 20} piece hashes, the layout needs ${pieceCount}`
  return layout
}
