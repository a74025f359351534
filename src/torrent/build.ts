import { createHash } from 'node:crypto'
import bencode from 'bencode'
import { encodeInfo } from './encode-info.js'
import type { LayoutFile } from './layout.js'

export interface TorrentSpec {
  name: string
  pieceLength: number
  files: LayoutFile[]
  /** SHA-1 of every piece, 20 bytes each, in order. */
  pieces: Buffer
  trackers: string[]
}

export interface BuiltTorrent {
  torrent: Buffer
  infoHash: string
}

/**
 * Encodes a .torrent (BitTorrent v1 with BEP 47 pad files). The info dict holds nothing
 * but the tree, so the infohash is the same on every host with the same tree; the file has
 * no creation date either, so hosts even produce byte-identical .torrent files. Announce
 * URLs are exactly the configured ones: none is added.
 */
export function buildTorrent(spec: TorrentSpec): BuiltTorrent {
  return wrapInfo(encodeInfo(spec.files, spec.name, spec.pieceLength, spec.pieces), spec.trackers)
}

/** A .torrent around an info dict already encoded, and its infohash. */
export function wrapInfo(infoBytes: Buffer, trackers: string[]): BuiltTorrent {
  const infoHash = createHash('sha1').update(infoBytes).digest('hex')
  // The info dict is spliced in as already-encoded bytes so it is encoded exactly once.
  const torrent = Buffer.concat([torrentHead(trackers), infoBytes, Buffer.from('e')])
  return { torrent, infoHash }
}

/** The bytes of a .torrent before its info dict's: the announce keys, then `4:info`. */
export function torrentHead(trackers: string[]): Buffer {
  const top: Record<string, unknown> = {}
  if (trackers.length > 0) {
    top.announce = trackers[0]
    top['announce-list'] = trackers.map(t => [t])
  }
  const head = Buffer.from(bencode.encode(top))
  return Buffer.concat([head.subarray(0, head.length - 1), Buffer.from('4:info')])
}

export function magnetLink(infoHash: string, name: string, trackers: string[]): string {
  let link = `magnet:?xt=urn:btih:${infoHash}&dn=${encodeURIComponent(name)}`
  for (const tr of trackers) link += `&tr=${encodeURIComponent(tr)}`
  return link
}
