import { closeSync, openSync, readFileSync, readSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { readTorrentInfo, type TorrentInfo } from '../torrent/read.js'
import { indexedShards } from '../torrent/shards.js'
import { MANIFEST_TORRENT_PATH, type RepoFiles } from './paths.js'

/** What the previous generation's torrents say about one file. */
export interface OldPieces {
  length: number
  /** Its piece hashes as that torrent had them (the last one unpadded if it ended the torrent). */
  pieces: Buffer
  /** It ended its torrent (or shard): its last piece hash is the unpadded one. */
  ended: boolean
}

/**
 * The piece hashes of every content file in the previous generation's torrents (the one
 * torrent, or every shard an index names): a file the change hint does not name keeps
 * them, so only changed files are read. Undefined when those torrents cannot be read.
 */
export function oldPieces(files: RepoFiles): Map<string, OldPieces> | undefined {
  let torrents: TorrentInfo[]
  try {
    const top = readTorrentInfo(readFileSync(files.torrent))
    const named = indexedShards(top.files)
    torrents = named ? named.map(ih => readTorrentInfo(readFileSync(join(files.shards, `${ih}.torrent`)))) : [top]
  } catch {
    return undefined
  }
  const out = new Map<string, OldPieces>()
  for (const info of torrents) {
    let offset = 0
    let lastReal = -1
    info.files.forEach((f, i) => { if (!f.pad) lastReal = i })
    info.files.forEach((f, i) => {
      if (!f.pad && f.path !== MANIFEST_TORRENT_PATH) {
        const first = offset / info.pieceLength
        const count = Math.ceil(f.length / info.pieceLength)
        out.set(f.path, { length: f.length, pieces: info.pieces.subarray(first * 20, (first + count) * 20), ended: i === lastReal })
      }
      offset += f.length
    })
  }
  return out
}

/**
 * The last piece of a file hashed both ways: zero-padded (inside a torrent) and as it is
 * (ending one). Reads at most one piece. Undefined when the file's size is not `size`.
 */
export function lastPieceHashes(path: string, size: number, pieceLength: number): { padded: Buffer; tail: Buffer } | undefined {
  const rest = size % pieceLength
  const fd = openSync(path, 'r')
  try {
    const buf = Buffer.alloc(rest + 1)
    const n = readSync(fd, buf, 0, rest + 1, size - rest)
    if (n !== rest) return undefined
    const data = buf.subarray(0, rest)
    return {
      tail: createHash('sha1').update(data).digest(),
      padded: createHash('sha1').update(data).update(Buffer.alloc(pieceLength - rest)).digest(),
    }
  } finally {
    closeSync(fd)
  }
}
