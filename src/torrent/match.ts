import { MANIFEST_TORRENT_PATH } from './layout.js'
import { layoutFiles, type LayoutFile } from './layout.js'
import { shardTorrentPath } from './shards.js'

/** What the checks need of data.dsync: its piece length and its entries (a parsed Manifest, or a host's content list). */
export interface ManifestShape {
  header: { pieceLength: number }
  entries: readonly { type: string; path: string; size: number }[]
}

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
export function matchTorrentToManifest(info: TorrentShape, manifest: ManifestShape, manifestLength: number): LayoutFile[] | string {
  const content = manifest.entries.filter(e => e.type === 'f' && e.size > 0)
  return matchFiles(info, manifest.header.pieceLength,
    [{ path: MANIFEST_TORRENT_PATH, length: manifestLength }, ...content.map(e => ({ path: e.path, length: e.size }))], 'the torrent')
}

export interface ShardShape extends TorrentShape {
  infoHash: string
  /** Byte length of the shard's .torrent file (its size inside the index torrent). */
  torrentLength: number
}

export interface ShardedLayout {
  index: LayoutFile[]
  shards: LayoutFile[][]
}

/**
 * A sharded repository: the index torrent must hold data.dsync and exactly these shard
 * .torrent files (named by their infohashes, in order), and the shards' files, concatenated
 * in that order, must be data.dsync's content files, each shard laid out as its own torrent.
 * No boundary rule is needed to check this, so hosts may place boundaries as they like.
 */
export function matchShardsToManifest(
  index: TorrentShape, shards: ShardShape[], manifest: ManifestShape, manifestLength: number,
): ShardedLayout | string {
  const pieceLength = manifest.header.pieceLength
  const indexLayout = matchIndexToShards(index, shards, pieceLength, manifestLength)
  if (typeof indexLayout === 'string') return indexLayout
  const content = manifest.entries.filter(e => e.type === 'f' && e.size > 0)
  const layouts: LayoutFile[][] = []
  let next = 0
  for (const shard of shards) {
    const count = shard.files.filter(f => !f.pad).length
    if (count === 0 || next + count > content.length) return `shard ${shard.infoHash} lists files beyond data.dsync's`
    const range = content.slice(next, next + count).map(e => ({ path: e.path, length: e.size }))
    const layout = matchFiles(shard, pieceLength, range, `shard ${shard.infoHash}`)
    if (typeof layout === 'string') return layout
    layouts.push(layout)
    next += count
  }
  if (next !== content.length) return `the shards hold ${next} files, data.dsync lists ${content.length}`
  return { index: indexLayout, shards: layouts }
}

/** The index torrent holds data.dsync, then exactly these shard .torrent files (named by their infohashes, in order). */
export function matchIndexToShards(
  index: TorrentShape, shards: { infoHash: string; torrentLength: number }[], pieceLength: number, manifestLength: number,
): LayoutFile[] | string {
  return matchFiles(index, pieceLength,
    [{ path: MANIFEST_TORRENT_PATH, length: manifestLength }, ...shards.map(s => ({ path: shardTorrentPath(s.infoHash), length: s.torrentLength }))],
    'the index torrent')
}

function matchFiles(info: TorrentShape, pieceLength: number, files: { path: string; length: number }[], what: string): LayoutFile[] | string {
  if (info.pieceLength !== pieceLength) return `${what}: piece length ${info.pieceLength} differs from data.dsync's ${pieceLength}`
  const layout = layoutFiles(files, pieceLength)
  if (info.files.length !== layout.length) return `${what} lists ${info.files.length} files, data.dsync implies ${layout.length}`
  for (let i = 0; i < layout.length; i++) {
    const a = layout[i]
    const b = info.files[i]
    if (a.length !== b.length || a.pad !== b.pad || (!a.pad && a.path !== b.path)) {
      return `${what}: file ${i} is "${b.path}" (${b.length} bytes), data.dsync implies "${a.path}" (${a.length} bytes)`
    }
  }
  const last = layout[layout.length - 1]
  const pieceCount = Math.ceil((last.offset + last.length) / pieceLength)
  if (info.pieces.length !== pieceCount * 20) return `${what} has ${info.pieces.length / 20} piece hashes, the layout needs ${pieceCount}`
  return layout
}
