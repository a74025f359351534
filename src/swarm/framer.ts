/**
 * Cuts a peer's byte stream into whole peer-wire messages (the 68-byte handshake first, then
 * length-prefixed messages) and hands them on in runs that start and end on message
 * boundaries.
 *
 * Why: bittorrent-protocol's Wire, fed raw socket chunks, joins every chunk with the
 * unfinished message before it (`concat` of the whole chunk: a fresh allocation and a copy of
 * every byte received), and its stream machinery pauses the socket whenever a chunk is over
 * its 16 KiB high-water mark. Given whole messages it parses them in place: a block is a view
 * of the socket's own chunk. Only a message split between two chunks is copied, once, into a
 * buffer of its own size.
 *
 * With `borrowed` chunks (the socket reads into one buffer of its own, again and again: no
 * allocation per read, which was most of the client's garbage) the messages whose bytes the
 * Wire keeps beyond the call are handed on as copies: the handshake (peer id), bitfield and
 * extended messages (metadata, peer exchange), and ids it does not know. Blocks, requests and
 * the other fixed-size messages are parsed into numbers, or copied by the downloader, at once.
 */
/**
 * Message ids bittorrent-protocol reads into numbers or hands to a request's callback (a
 * block), keeping no view of them: choke..have, request, piece, cancel, port, and the fast
 * extension's suggest, have all/none, reject, allowed fast.
 */
const PARSED_AT_ONCE = new Set([0, 1, 2, 3, 4, 6, 7, 8, 9, 0x0d, 0x0e, 0x0f, 0x10, 0x11])

/**
 * Takes a whole piece message (id 7) at `at` in `chunk`, `length` bytes with its prefix, in its
 * place in the stream: the messages before it were delivered, those after it are not yet. Every
 * piece message goes here, one split between chunks too (once assembled).
 */
export type PieceHook = (chunk: Buffer, at: number, length: number) => void

export class MessageFramer {
  /** The next message is the handshake (its length is known from its first byte). */
  private handshake = true
  /** A message split across chunks, being assembled; `have` bytes of it so far. */
  private asm: Buffer | undefined
  private have = 0
  /** `asm` is the handshake. */
  private asmHandshake = false
  /** The first bytes of a length prefix (or of the handshake) split across chunks. */
  private readonly head = Buffer.alloc(4)
  private headHave = 0

  /**
   * @param deliver receives whole messages (one or several back to back); the bytes are only
   *   valid during the call when they are a view of the caller's chunk.
   * @param maxMessage longest message accepted; a peer claiming more is refused via `onError`
   *   before anything is allocated for it.
   */
  constructor(
    private readonly deliver: (bytes: Buffer) => void,
    private readonly onError: (reason: string) => void,
    private readonly maxMessage: number,
    private readonly borrowed = false,
    private readonly piece?: PieceHook,
  ) {}

  push(chunk: Buffer): void {
    let pos = this.finishPending(chunk)
    if (pos < 0) return
    let start = pos
    for (;;) {
      const len = this.lengthAt(chunk, pos)
      if (len < 0 || pos + len > chunk.length) break
      if (this.piece && !this.handshake && len >= 13 && chunk[pos + 4] === 7) {
        if (pos > start) this.deliver(chunk.subarray(start, pos))
        this.piece(chunk, pos, len)
        start = pos + len
      } else if (this.borrowed && (this.handshake || (len > 4 && !PARSED_AT_ONCE.has(chunk[pos + 4])))) {
        if (pos > start) this.deliver(chunk.subarray(start, pos))
        this.deliver(Buffer.from(chunk.subarray(pos, pos + len)))
        start = pos + len
      }
      pos += len
      this.handshake = false
    }
    if (pos > start) this.deliver(chunk.subarray(start, pos))
    if (pos < chunk.length) this.hold(chunk, pos)
  }

  /** Total length of the message starting at `pos` (prefix included), or -1 if not yet known. */
  private lengthAt(buf: Buffer, pos: number): number {
    if (this.handshake) return pos < buf.length ? 49 + buf[pos] : -1
    if (pos + 4 > buf.length) return -1
    return 4 + buf.readUInt32BE(pos)
  }

  /**
   * Completes a message left unfinished by earlier chunks. Returns where the rest of `chunk`
   * starts, or -1 when the chunk was used up (or the peer refused).
   */
  private finishPending(chunk: Buffer): number {
    let pos = 0
    if (this.headHave > 0) {
      const need = (this.handshake ? 1 : 4) - this.headHave
      const n = Math.min(need, chunk.length)
      chunk.copy(this.head, this.headHave, 0, n)
      this.headHave += n
      pos = n
      if (n < need) return -1
      const head = this.head.subarray(0, this.headHave)
      this.headHave = 0
      const len = this.lengthAt(head, 0)
      if (!this.start(len)) return -1
      head.copy(this.asm!, 0)
      this.have = head.length
    }
    if (!this.asm) return pos
    const n = Math.min(this.asm.length - this.have, chunk.length - pos)
    chunk.copy(this.asm, this.have, pos, pos + n)
    this.have += n
    pos += n
    if (this.have < this.asm.length) return -1
    const whole = this.asm
    this.asm = undefined
    if (this.piece && !this.asmHandshake && whole.length >= 13 && whole[4] === 7) this.piece(whole, 0, whole.length)
    else this.deliver(whole)
    return pos
  }

  /** Keeps the unfinished message at the end of `chunk`. */
  private hold(chunk: Buffer, pos: number): void {
    const len = this.lengthAt(chunk, pos)
    if (len < 0) {
      chunk.copy(this.head, 0, pos)
      this.headHave = chunk.length - pos
      return
    }
    if (!this.start(len)) return
    chunk.copy(this.asm!, 0, pos)
    this.have = chunk.length - pos
  }

  private start(len: number): boolean {
    if (len > this.maxMessage) {
      this.onError(`announced a message of ${len - 4} bytes`)
      return false
    }
    this.asmHandshake = this.handshake
    this.handshake = false
    this.asm = Buffer.allocUnsafe(len)
    this.have = 0
    return true
  }
}
