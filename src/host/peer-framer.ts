/**
 * The host's one reader of a peer's bytes: follows the peer-wire framing (the 68-byte
 * handshake, then length-prefixed messages) once, and on that one pass
 *  - refuses a message longer than the protocol needs (and an opening that is not plain
 *    BitTorrent) before bittorrent-protocol's Wire starts collecting it: the Wire buffers
 *    whatever length a peer claims (a 2 GB prefix made the host re-concatenate its buffer on
 *    every chunk: a core busy on 2 MiB/s of input);
 *  - takes block requests and cancels out of the stream and hands them to the session
 *    together, every other byte to the Wire in order (see `RequestTaker`).
 *
 * Session 23 had these as two classes (frame-guard.ts, request-splitter.ts), each tracking
 * message boundaries on its own. The client's MessageFramer (src/swarm/framer.ts) is not used
 * here: it assembles every message whole (a buffer of the claimed size, one limit for all
 * ids) and knows nothing of the handshake's protocol string, while a host passes bytes through
 * without buffering and needs a limit per message id.
 *
 * A chunk is checked whole before anything of it is handed on: a chunk with a message over the
 * limits gives the Wire and the session none of its bytes, as when the guard ran first.
 */

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
const ID_REQUEST = 6
const ID_CANCEL = 8
const ID_EXTENDED = 20
/** A peer-wire request (id 6) or cancel (id 8): a 13-byte body, 17 bytes with its length prefix. */
const SMALL = 17

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

/** Who answers the requests the framer takes out of a connection's bytes. */
export interface RequestTaker {
  /**
   * Requests `from` to `to` (exclusive) of `triples`, read from one chunk, oldest first, as
   * (piece, offset, length) triples (valid during the call only).
   */
  takeRequests(triples: number[], from: number, to: number): void
  cancel(piece: number, offset: number, length: number): void
}

/**
 * Why requests are taken before the Wire: a host serving a tree of small files gets one
 * request per file. Through the Wire each one was two views of the chunk, a parser callback, a
 * `Request` object and a closure kept in the Wire's `peerRequests` (searched again to answer
 * it), an event, and our own queue entry; and each answer went back through the Wire's readable
 * stream (a 13-byte array, two pushes, the pipe's two socket writes). Here a chunk's requests
 * are read into numbers in one pass and given to the session together, which answers them in
 * one batch (peer-session.ts).
 *
 * Until `taker` is set (the Wire's handshake event attaches the session) every byte goes to the
 * Wire, whose own request handling still works. A message cut between chunks is passed through
 * as it comes, except the first bytes of one that may be a request or cancel (at most 17
 * bytes), held until it is known.
 */
export class PeerFramer {
  taker: RequestTaker | undefined
  /** When the message being received started (0 at a message boundary): the idle watch's. */
  partialSince = 0
  private handshakeLeft = HANDSHAKE_BYTES
  /** Bytes of the current message still to pass to the Wire as they come. */
  private passLeft = 0
  /**
   * The next byte is the id of a message of `idLength` bytes over MAX_MESSAGE, whose limit
   * depends on it (the length prefix ended the chunk before).
   */
  private idPending = false
  private idLength = 0
  /** The first bytes of a message cut at a chunk's end, held until we know what it is. */
  private readonly head = Buffer.alloc(SMALL)
  private headHave = 0
  /** The chunk's requests as triples, handed on together once the chunk passed. */
  private readonly batch: number[] = []
  private batchCount = 0
  /** The chunk's cancels: (requests before it, piece, offset, length) each. */
  private readonly cancels: number[] = []
  /** The chunk's bytes for the Wire, in order, handed on once the chunk passed. */
  private readonly wireOut: Buffer[] = []

  /** @param bitfieldMax the largest bitfield message of any served torrent (1 + pieces / 8). */
  constructor(
    private readonly bitfieldMax: () => number,
    private readonly toWire: (bytes: Buffer) => void,
  ) {}

  /** Reads one chunk; returns why the connection must close (nothing of the chunk handed on), or undefined. */
  push(chunk: Buffer): FrameProblem | undefined {
    const problem = this.scan(chunk)
    if (problem) {
      this.wireOut.length = 0
      this.batchCount = 0
      this.cancels.length = 0
      return problem
    }
    for (let k = 0; k < this.wireOut.length; k++) this.toWire(this.wireOut[k])
    this.wireOut.length = 0
    this.deliver()
    if (this.atBoundary()) this.partialSince = 0
    else if (this.partialSince === 0) this.partialSince = Date.now()
    return undefined
  }

  private scan(chunk: Buffer): FrameProblem | undefined {
    const n = chunk.length
    let i = 0
    /** Start of the bytes for the Wire not yet queued for it. */
    let run = 0
    if (this.handshakeLeft > 0) {
      const k = Math.min(this.handshakeLeft, n)
      const seen = HANDSHAKE_BYTES - this.handshakeLeft
      for (let j = 0; seen + j < PROTOCOL_PREFIX.length && j < k; j++) {
        if (chunk[j] !== PROTOCOL_PREFIX[seen + j]) return { reason: 'not a plain BitTorrent handshake (encrypted?)', penalize: false }
      }
      this.handshakeLeft -= k
      i = k
    }
    while (i < n) {
      if (this.idPending) {
        const problem = this.check(this.idLength, chunk[i])
        if (problem) return { reason: problem, penalize: true }
        this.idPending = false
      }
      if (this.passLeft > 0) {
        const k = Math.min(this.passLeft, n - i)
        this.passLeft -= k
        i += k
        continue
      }
      if (this.headHave > 0) {
        // The held start of a message (the chunk before ended inside it): the length prefix,
        // then for a 13-byte body its id, then for a request or cancel the whole message.
        // Never more: the bytes after a shorter message (a keep-alive's 4) are the next one's.
        i = this.fill(chunk, i, 4)
        run = i
        if (this.headHave < 4) continue
        const length = this.head.readUInt32BE(0)
        if (length === SMALL - 4) {
          i = this.fill(chunk, i, 5)
          run = i
          if (this.headHave < 5) continue
          if (this.isOurs(length, this.head[4])) {
            i = this.fill(chunk, i, SMALL)
            run = i
            if (this.headHave < SMALL) continue
            this.take(this.head, 0)
            this.headHave = 0
            continue
          }
        }
        // Not ours: the held bytes go to the Wire (a copy: `head` is reused), the rest passes.
        // A length over MAX_MESSAGE is checked against its id, the next byte (`headHave` is 4).
        if (length > MAX_MESSAGE) {
          if (i < n) {
            const problem = this.check(length, chunk[i])
            if (problem) return { reason: problem, penalize: true }
          } else {
            this.idPending = true
            this.idLength = length
          }
        }
        this.wireOut.push(Buffer.from(this.head.subarray(0, this.headHave)))
        this.passLeft = 4 + length - this.headHave
        this.headHave = 0
        continue
      }
      // At a message boundary.
      if (n - i < 5) {
        run = this.hold(chunk, run, i)
        i = n
        break
      }
      const length = chunk.readUInt32BE(i)
      const id = chunk[i + 4]
      if (this.isOurs(length, id)) {
        if (n - i < SMALL) {
          run = this.hold(chunk, run, i)
          i = n
          break
        }
        if (i > run) this.wireOut.push(chunk.subarray(run, i))
        this.take(chunk, i)
        i += SMALL
        run = i
        continue
      }
      if (length > MAX_MESSAGE) {
        const problem = this.check(length, id)
        if (problem) return { reason: problem, penalize: true }
      }
      this.passLeft = 4 + length
    }
    if (i > run) this.wireOut.push(chunk.subarray(run, i))
    return undefined
  }

  /** Every message of at most MAX_MESSAGE bytes is allowed; longer ones by their id. */
  private check(length: number, id: number): string | undefined {
    const max = id === ID_EXTENDED ? MAX_EXTENDED : id === ID_BITFIELD ? Math.max(MAX_MESSAGE, this.bitfieldMax()) : MAX_MESSAGE
    return length > max ? `message of ${length} bytes (type ${id}) exceeds ${max}` : undefined
  }

  /**
   * Between messages: nothing of one passed or held, except a whole keep-alive (4 zero bytes),
   * held at a chunk's end until the next chunk says what follows it.
   */
  private atBoundary(): boolean {
    if (this.handshakeLeft > 0 || this.passLeft > 0 || this.idPending) return false
    return this.headHave === 0 || (this.headHave === 4 && this.head.readUInt32BE(0) === 0)
  }

  private isOurs(length: number, id: number): boolean {
    return length === SMALL - 4 && (id === ID_REQUEST || id === ID_CANCEL) && this.taker !== undefined
  }

  /** Copies bytes of `chunk` from `i` into the held start until it has `upTo`; returns the new `i`. */
  private fill(chunk: Buffer, i: number, upTo: number): number {
    const k = Math.min(upTo - this.headHave, chunk.length - i)
    if (k <= 0) return i
    chunk.copy(this.head, this.headHave, i, i + k)
    this.headHave += k
    return i + k
  }

  /** Queues for the Wire the bytes before `at` and keeps the rest of the chunk (under 17 bytes). */
  private hold(chunk: Buffer, run: number, at: number): number {
    if (at > run) this.wireOut.push(chunk.subarray(run, at))
    chunk.copy(this.head, 0, at)
    this.headHave = chunk.length - at
    return chunk.length
  }

  private take(bytes: Buffer, at: number): void {
    const piece = bytes.readUInt32BE(at + 5)
    const offset = bytes.readUInt32BE(at + 9)
    const length = bytes.readUInt32BE(at + 13)
    if (bytes[at + 4] === ID_CANCEL) {
      // After the requests before it: the cancel may be for one of them.
      this.cancels.push(this.batchCount, piece, offset, length)
      return
    }
    const b = this.batchCount * 3
    this.batch[b] = piece
    this.batch[b + 1] = offset
    this.batch[b + 2] = length
    this.batchCount++
  }

  /** Hands the chunk's requests and cancels to the taker in the order they came. */
  private deliver(): void {
    const count = this.batchCount
    this.batchCount = 0
    let from = 0
    const c = this.cancels
    for (let k = 0; k < c.length; k += 4) {
      if (c[k] > from) this.taker!.takeRequests(this.batch, from, c[k])
      from = c[k]
      this.taker!.cancel(c[k + 1], c[k + 2], c[k + 3])
    }
    c.length = 0
    if (count > from) this.taker!.takeRequests(this.batch, from, count)
  }
}
