import { createHash, hash as oneShot, type Hash } from 'node:crypto'
import { pieceHashes } from '../manifest/hash-file.js'
import type { PendingShard, TorrentContent } from '../manifest/outputs.js'
import type { ShardOut } from '../manifest/shard-rebuild.js'

/**
 * A full run's shard torrent made ready while the workers hash: the torrent's head and the info
 * dict up to its pieces copied into the final buffer, the infohash's SHA-1 and the index
 * torrent's piece hashes of the file (buildIndexTorrentFrom hashes each shard file as a file of
 * the index) taken over those bytes, which the pieces do not change. After the last file only
 * the pieces (~4 MB of the ~30 MB at 200k files) are copied and hashed; sealShards (outputs.ts)
 * did all of it then, on one core with the other idle.
 */
export class PresealedShard {
  private readonly torrent: Buffer
  private readonly infoHash: Hash
  private readonly windows: Buffer
  private windowsDone = 0
  private readonly headBytes: number

  constructor(private readonly pending: PendingShard, head: Buffer, private readonly pieceLength: number) {
    const { info, piecesAt } = pending
    this.headBytes = head.length
    this.torrent = Buffer.allocUnsafe(head.length + info.length + 1)
    head.copy(this.torrent, 0)
    info.copy(this.torrent, head.length, 0, piecesAt)
    this.infoHash = createHash('sha1').update(info.subarray(0, piecesAt))
    const P = pieceLength
    this.windows = Buffer.allocUnsafe(Math.ceil(this.torrent.length / P) * 20)
    for (const final = head.length + piecesAt; (this.windowsDone + 1) * P <= final; this.windowsDone++) {
      const at = this.windowsDone * P
      ;(oneShot('sha1', this.torrent.subarray(at, at + P), 'buffer') as Buffer).copy(this.windows, this.windowsDone * 20)
    }
  }

  /**
   * The shard with its pieces (the last one unpadded, as sealShards writes it) and its piece
   * hashes as a file of the index torrent (`last`: the index's last file, whose last piece is
   * then unpadded too).
   */
  finish(content: TorrentContent, last: boolean): ShardOut {
    const p = this.pending
    const pieces = content.pieces(p.first, p.end)
    if (content.length(p.end - 1) % this.pieceLength !== 0) {
      const tail = content.tail(p.end - 1)
      if (!tail) throw new Error(`no unpadded last-piece hash for content file ${p.end - 1}`)
      tail.copy(pieces, pieces.length - 20)
    }
    pieces.copy(p.info, p.piecesAt)
    const rest = p.info.subarray(p.piecesAt)
    rest.copy(this.torrent, this.headBytes + p.piecesAt)
    this.torrent[this.torrent.length - 1] = 0x65 // 'e': the torrent's dict
    const infoHash = this.infoHash.update(rest).digest('hex')
    const P = this.pieceLength
    const hashed = pieceHashes(this.torrent.subarray(this.windowsDone * P), P, last)
    hashed.pieces.copy(this.windows, this.windowsDone * 20)
    const indexPieces = hashed.tail ? { pieces: this.windows, tail: hashed.tail } : { pieces: this.windows }
    return { torrent: this.torrent, infoHash, built: true, count: p.end - p.first, bytes: p.bytes, indexPieces }
  }
}
