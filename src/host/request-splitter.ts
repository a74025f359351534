/** A peer-wire request (id 6) or cancel (id 8): a 13-byte body, 17 bytes with its length prefix. */
const SMALL = 17
const ID_REQUEST = 6
const ID_CANCEL = 8
/** The BitTorrent handshake (pstrlen, protocol, reserved, infohash, peer id) comes first. */
const HANDSHAKE_BYTES = 68

/** Who answers the requests the splitter takes out of a connection's bytes. */
export interface RequestTaker {
  /**
   * `count` requests read from one chunk, oldest first, as (piece, offset, length) triples in
   * `triples` (valid during the call only).
   */
  takeRequests(triples: number[], count: number): void
  cancel(piece: number, offset: number, length: number): void
}

/**
 * Takes block requests (and cancels) out of a peer's byte stream before bittorrent-protocol's
 * Wire sees them, and hands every other byte to the Wire in order.
 *
 * Why: a host serving a tree of small files gets one request per file. Through the Wire each
 * one was two views of the chunk, a parser callback, a `Request` object and a closure kept in
 * the Wire's `peerRequests` (searched again to answer it), an event, and our own queue entry;
 * and each answer went back through the Wire's readable stream (a 13-byte array, two pushes,
 * the pipe's two socket writes). Here a chunk's requests are read into numbers in one pass and
 * given to the session together, which answers them in one batch (peer-session.ts).
 *
 * Runs after FrameGuard (frame-guard.ts), which has already refused oversized messages. Until
 * `taker` is set (the Wire's handshake event attaches the session) every byte goes to the Wire,
 * whose own request handling still works. A message cut between chunks is passed through as it
 * comes, except the first bytes of one that may be a request or cancel (at most 17 bytes),
 * held until it is known.
 */
export class RequestSplitter {
  taker: RequestTaker | undefined
  private handshakeLeft = HANDSHAKE_BYTES
  /** Bytes of the current message still to pass to the Wire as they come. */
  private passLeft = 0
  /** The first bytes of a message cut at a chunk's end, held until we know what it is. */
  private readonly head = Buffer.alloc(SMALL)
  private headHave = 0
  /** The chunk's requests as triples, handed on together. */
  private readonly batch: number[] = []
  private batchCount = 0

  constructor(private readonly toWire: (bytes: Buffer) => void) {}

  push(chunk: Buffer): void {
    const n = chunk.length
    let i = 0
    /** Start of the bytes for the Wire not yet handed to it. */
    let run = 0
    if (this.handshakeLeft > 0) {
      i = Math.min(this.handshakeLeft, n)
      this.handshakeLeft -= i
    }
    while (i < n) {
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
        this.toWire(Buffer.from(this.head.subarray(0, this.headHave)))
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
      if (this.isOurs(length, chunk[i + 4])) {
        if (n - i < SMALL) {
          run = this.hold(chunk, run, i)
          i = n
          break
        }
        if (i > run) this.toWire(chunk.subarray(run, i))
        this.take(chunk, i)
        i += SMALL
        run = i
        continue
      }
      this.passLeft = 4 + length
    }
    if (i > run) this.toWire(chunk.subarray(run, i))
    this.deliver()
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

  /** Hands the Wire the bytes before `at` and keeps the rest of the chunk (under 17 bytes). */
  private hold(chunk: Buffer, run: number, at: number): number {
    if (at > run) this.toWire(chunk.subarray(run, at))
    chunk.copy(this.head, 0, at)
    this.headHave = chunk.length - at
    return chunk.length
  }

  private take(bytes: Buffer, at: number): void {
    const piece = bytes.readUInt32BE(at + 5)
    const offset = bytes.readUInt32BE(at + 9)
    const length = bytes.readUInt32BE(at + 13)
    if (bytes[at + 4] === ID_CANCEL) {
      // Requests before it first: the cancel may be for one of them.
      this.deliver()
      this.taker!.cancel(piece, offset, length)
      return
    }
    const b = this.batchCount * 3
    this.batch[b] = piece
    this.batch[b + 1] = offset
    this.batch[b + 2] = length
    this.batchCount++
  }

  private deliver(): void {
    if (this.batchCount === 0) return
    const count = this.batchCount
    this.batchCount = 0
    this.taker!.takeRequests(this.batch, count)
  }
}
