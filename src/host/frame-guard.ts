/** A BitTorrent handshake: pstrlen, "BitTorrent protocol", reserved, infohash, peer id. */
const HANDSHAKE_BYTES = 68
/** The handshake's first 20 bytes, the same in every plain (unencrypted) BitTorrent connection. */
const PROTOCOL_PREFIX = Buffer.from('\x13BitTorrent protocol', 'latin1')
/** A block (16 KiB, BEP 3) plus the piece message's id, index and offset. */
export const MAX_MESSAGE = 16 * 1024 + 9
/**
 * BEP 10 extended messages: the extension handshake and ut_metadata requests are a few
 * hundred bytes; a metadata block is 16 KiB plus its dict. libtorrent refuses an extension
 * handshake over 64 KiB too (it is a bencoded dict read whole into memory).
 */
export const MAX_EXTENDED = 64 * 1024
const ID_BITFIELD = 5
const ID_EXTENDED = 20

/** Why a connection must close, and whether its address should be kept out a while. */
export interface FrameProblem {
  reason: string
  /**
   * False for an opening that is not plain BitTorrent: libtorrent opens with an encrypted
   * handshake (MSE) by default and retries in plain text when that is closed. Its random
   * bytes start with 0x13 one time in 256 and so reach the peer wire; keeping the address
   * out then refused the plain retry too (a libtorrent leecher waited 30 s for nothing).
   */
  penalize: boolean
}

/**
 * Follows the framing of the bytes a peer sends, without buffering them, to refuse a
 * message longer than the protocol needs before bittorrent-protocol's Wire starts
 * collecting it: the Wire buffers whatever length a peer claims (a 2 GB prefix made the host
 * re-concatenate its buffer on every chunk: a core busy on 2 MiB/s of input).
 */
export class FrameGuard {
  private handshakeLeft = HANDSHAKE_BYTES
  /** Bytes of the current length prefix seen, and its value so far. */
  private lengthBytes = 0
  private length = 0
  /** Bytes of the current message body still to skip; -1 while its id byte is awaited. */
  private bodyLeft = 0
  /** When the message being received started (0 at a message boundary). */
  partialSince = 0

  /** @param bitfieldMax the largest bitfield message of any served torrent (1 + pieces / 8). */
  constructor(private readonly bitfieldMax: () => number) {}

  /** Feeds one chunk; returns why the connection must close, or undefined. */
  feed(chunk: Buffer): FrameProblem | undefined {
    let i = 0
    if (this.handshakeLeft > 0) {
      const n = Math.min(this.handshakeLeft, chunk.length)
      const seen = HANDSHAKE_BYTES - this.handshakeLeft
      for (let k = 0; seen + k < PROTOCOL_PREFIX.length && k < n; k++) {
        if (chunk[k] !== PROTOCOL_PREFIX[seen + k]) return { reason: 'not a plain BitTorrent handshake (encrypted?)', penalize: false }
      }
      this.handshakeLeft -= n
      i = n
    }
    while (i < chunk.length) {
      if (this.bodyLeft > 0) {
        const n = Math.min(this.bodyLeft, chunk.length - i)
        this.bodyLeft -= n
        i += n
      } else if (this.bodyLeft === -1) {
        const problem = this.check(chunk[i])
        if (problem) return { reason: problem, penalize: true }
        this.bodyLeft = this.length - 1
        i++
      } else {
        this.length = this.length * 256 + chunk[i]
        this.lengthBytes++
        i++
        if (this.lengthBytes === 4) {
          this.lengthBytes = 0
          this.bodyLeft = this.length === 0 ? 0 : -1 // 0: keep-alive
        }
      }
      if (this.bodyLeft === 0 && this.lengthBytes === 0) this.length = 0
    }
    const atBoundary = this.handshakeLeft === 0 && this.bodyLeft === 0 && this.lengthBytes === 0
    if (atBoundary) this.partialSince = 0
    else if (this.partialSince === 0) this.partialSince = Date.now()
    return undefined
  }

  private check(id: number): string | undefined {
    const max = id === ID_EXTENDED ? MAX_EXTENDED : id === ID_BITFIELD ? Math.max(MAX_MESSAGE, this.bitfieldMax()) : MAX_MESSAGE
    return this.length > max ? `message of ${this.length} bytes (type ${id}) exceeds ${max}` : undefined
  }
}
