import type { Socket } from 'node:net'
import type { Wire } from 'bittorrent-protocol'
import { StaleFileError } from './fd-cache.js'
import type { HostLog } from './log.js'
import { BadRequestError, MAX_BLOCK } from './piece-reader.js'
import type { Seeder } from './seeder.js'
import type { RequestTaker } from './peer-framer.js'
import type { BudgetUser, SendBudget } from './send-budget.js'
import { wireInternals, type WireInternals } from './wire-internals.js'
import { IDLE_TIMEOUT_KEY, MAX_BLOCK_KEY, MOTD_EXTENSION } from '../shared/wire-protocol.js'
import { corkUntilNextTurn } from '../shared/cork.js'

/** How long a peer without the fast extension stays choked after asking for a stale block. */
const STALE_CHOKE_MS = 10_000
/** A peer with more requests than this waiting is misbehaving (clients keep a few hundred). */
const MAX_QUEUED = 2048
/**
 * A peer's socket takes this many bytes before write() says "wait" (Node's default is 16 KiB,
 * one block). bittorrent-protocol's Wire writes through a stream pipe that stops at that answer
 * and sends the rest on 'drain', one write() (one send()) per 13-byte header and per block: at
 * 16 KiB socket writes were the host's largest cost after reads (147,732 write() calls serving
 * 1 GiB, 11,711 with this). The send budget still bounds what a peer holds; the reading side
 * keeps Node's default, so a paused peer's unread requests stay bounded as before.
 */
const SOCKET_WRITE_HIGH_WATER = 256 * 1024
/** With this many requests waiting we stop reading more of them from the socket. */
const PAUSE_PENDING = 256
/**
 * Disk reads in flight for one peer. Reads share the fd cache's few permits in FIFO order, so
 * without this a peer that asks a lot (and reads nothing) queued hundreds of reads ahead of
 * everyone else's: a good client fell to 5% of its rate in bench host-abuse.
 */
const READS_PER_PEER = 8
/**
 * Blocks up to this size are copied into the session's send buffer with their headers, so a
 * batch of small blocks leaves in one socket write; bigger ones are written as they are.
 */
const COPY_MAX = 4096
/** The send buffer: one is filled, handed to the socket, and replaced. */
const OUT_BYTES = 64 * 1024
const HEADER_BYTES = 13
const ID_PIECE = 7

type Respond = (err: Error | null, buf?: Uint8Array) => void
/**
 * A request waiting or being read. `respond` is the Wire's for a request it parsed; a request
 * the framer took (peer-framer.ts) has none and is answered by `send`, unless the peer
 * was choked since it came (`epoch`).
 */
interface Pending { piece: number; offset: number; length: number; respond: Respond | undefined; epoch: number }

/**
 * One leecher connected to one repository: answer the handshake, say we have every piece,
 * unchoke at once (a host only seeds, and its allowlist already chose who may connect), and
 * serve block requests from the piece reader.
 */
export class PeerSession implements BudgetUser, RequestTaker {
  uploaded = 0
  /** Requests not yet read from disk, oldest first. */
  private readonly pending: Pending[] = []
  /** Bytes of blocks being read from disk, and how many reads. */
  private reading = 0
  private reads = 0
  private paused = false
  /** Inside pump's loop: blocks answered at once leave the next ones to the loop. */
  private pumping = false
  private stallTimer: NodeJS.Timeout | undefined
  private closed = false
  private readonly closeHandlers: (() => void)[] = []
  private unchokeTimer: NodeJS.Timeout | undefined
  /** Chokes so far: a request taken before the last one is not answered (BEP 3). */
  private epoch = 0
  /** Blocks answered and not yet handed to the socket: out[outStart, outLen). */
  private out: Buffer | undefined
  private outStart = 0
  private outLen = 0
  /** The Wire's internals the session needs (wire-internals.ts). */
  private readonly internals: WireInternals

  constructor(
    private readonly seeder: Seeder,
    private readonly wire: Wire,
    private readonly socket: Socket,
    readonly remote: string,
    private readonly log: HostLog,
    private readonly budget: SendBudget,
  ) {
    this.internals = wireInternals(wire)
    const done = () => this.finish()
    socket.once('close', done)
    wire.once('close', done)
    wire.once('finish', done)
    wire.use(seeder.metadataExt)
    wire.use(seeder.motdExt)
    if (seeder.pex) wire.use(seeder.pex(remote))
    wire.extendedHandshake[MAX_BLOCK_KEY] = MAX_BLOCK
    // Our idle timeout (the budget's stall time is the same setting): a dsync client paces its
    // keep-alives by it, so a short `idle-timeout=` does not cut clients that are only waiting.
    wire.extendedHandshake[IDLE_TIMEOUT_KEY] = budget.stallMs
    wire.handshake(seeder.gen.infoHash, seeder.peerId, { dht: false, fast: true })
    if (wire.hasFast) wire.haveAll()
    else wire.bitfield(seeder.bitfield)
    wire.unchoke()
    wire.setKeepAlive(true)
    raiseWriteThreshold(socket, SOCKET_WRITE_HIGH_WATER)
    wire.on('request', (piece: number, offset: number, length: number, respond: Respond) =>
      this.serve({ piece, offset, length, respond, epoch: this.epoch }))
    // The socket took bytes: room for more blocks, maybe for other peers too.
    socket.on('drain', () => this.pump())
    // What the Wire's pipe sends on 'drain' (it stopped when the socket was full) leaves in one
    // writev at the end of the turn, with the blocks pump answers: not a send() per message.
    socket.prependListener('drain', () => this.cork())
    wire.on('upload', (n: number) => {
      this.uploaded += n
      seeder.countUpload(n, remote)
    })
  }

  get remoteAddress(): string {
    return this.socket.remoteAddress ?? ''
  }

  uploadRate(): number {
    return this.wire.uploadSpeed()
  }

  sendMotd(text: string): void {
    this.internals.extension<{ send?: (s: string) => void }>(MOTD_EXTENSION)?.send?.(text)
  }

  onClose(fn: () => void): void {
    this.closeHandlers.push(fn)
  }

  destroy(): void {
    this.socket.destroy()
    this.finish()
  }

  wake(): void {
    this.pump()
  }

  /** Drops a peer that broke the rules; its address waits a while before it may connect again. */
  private abuse(reason: string): void {
    this.log.event('error', { peer: this.remote, repo: this.seeder.gen.repo, reason })
    this.budget.onAbuse(this.remoteAddress)
    this.destroy()
  }

  /**
   * Requests the framer read from one chunk: queued together, then one pump answers what
   * it can, and the blocks read at once leave in one write.
   */
  takeRequests(triples: number[], from: number, to: number): void {
    if (this.closed) return
    if (this.wire.amChoking) {
      // As the Wire does: a choked peer's requests are refused (BEP 6) or dropped (BEP 3).
      if (this.wire.hasFast) for (let k = from; k < to; k++) this.wire.reject(triples[3 * k], triples[3 * k + 1], triples[3 * k + 2])
      return
    }
    const count = to - from
    if (this.pending.length + count > MAX_QUEUED) {
      this.abuse(`more than ${MAX_QUEUED} requests queued`)
      return
    }
    for (let k = from; k < to; k++) {
      this.pending.push({ piece: triples[3 * k], offset: triples[3 * k + 1], length: triples[3 * k + 2], respond: undefined, epoch: this.epoch })
    }
    this.seeder.requests += count
    this.pump()
  }

  /** A cancel drops the request if its read has not started (a started one is still sent). */
  cancel(piece: number, offset: number, length: number): void {
    const i = this.pending.findIndex(r => r.respond === undefined && r.piece === piece && r.offset === offset && r.length === length)
    if (i >= 0) this.pending.splice(i, 1)
  }

  private serve(req: Pending): void {
    if (this.pending.length >= MAX_QUEUED) {
      this.abuse(`more than ${MAX_QUEUED} requests queued`)
      return
    }
    this.seeder.requests++
    this.pending.push(req)
    this.pump()
  }

  /** Bytes this peer holds: blocks being read, plus blocks the Wire and socket have not sent. */
  private queuedBytes(): number {
    return this.reading + (this.outLen - this.outStart) + this.internals.queued() + this.socket.writableLength
  }

  /**
   * Starts disk reads while the peer's queue (and the host's) has room, and reads the peer's
   * requests only while it does: a peer that never reads what we send stops being read.
   */
  private pump(): void {
    if (this.closed || this.pumping) return
    this.pumping = true
    this.budget.set(this, this.queuedBytes())
    while (!this.closed && this.pending.length > 0 && this.reads < READS_PER_PEER && this.budget.mayRead(this)) {
      const req = this.pending.shift()!
      this.reading += req.length
      this.reads++
      this.budget.set(this, this.queuedBytes())
      // The upload limit holds the request before the disk read, so waiting blocks cost no memory.
      const wait = this.seeder.throttle(this, req.length)
      if (wait) void wait.then(() => this.read(req))
      else this.read(req)
    }
    this.pumping = false
    if (this.closed) return
    this.flush()
    this.flowControl()
  }

  private flowControl(): void {
    const full = this.budget.full(this)
    if (full && !this.stallTimer) {
      this.stallTimer = setTimeout(() => {
        this.abuse(`reads nothing: ${this.queuedBytes()} bytes queued for ${this.budget.stallMs / 1000} s`)
      }, this.budget.stallMs)
      this.stallTimer.unref()
    } else if (!full && this.stallTimer) {
      clearTimeout(this.stallTimer)
      this.stallTimer = undefined
    }
    const stop = full || this.pending.length >= PAUSE_PENDING
    if (stop !== this.paused) {
      this.paused = stop
      if (stop) this.socket.pause()
      else this.socket.resume()
    }
  }

  /**
   * A block inside one small file is read and answered right here (no promise, no second
   * pump: the caller's loop goes on); others through the asynchronous read.
   */
  private read(req: Pending): void {
    if (this.closed) return
    let now: Buffer | undefined
    try {
      now = this.seeder.reader.readNow(req.piece, req.offset, req.length)
    } catch (err) {
      this.failed(req, err as Error)
      return
    }
    if (now) return this.answer(req, now)
    this.seeder.reader.read(req.piece, req.offset, req.length).then(buf => this.answer(req, buf), (err: Error) => this.failed(req, err))
  }

  /**
   * `buf` holds a reference to its read buffer (read-buffers.ts), given back once it is sent or
   * copied; a block handed to the Wire keeps it (the Wire's stream holds the bytes).
   */
  private answer(req: Pending, buf: Buffer): void {
    this.reading -= req.length
    this.reads--
    if (this.closed) return this.seeder.reader.buffers.release(buf)
    this.cork()
    if (req.respond) req.respond(null, buf)
    else if (req.epoch === this.epoch) this.send(req, buf)
    else this.seeder.reader.buffers.release(buf)
    if (!this.pumping) this.pump()
  }

  /**
   * A piece message for a request the framer took, into the send buffer (flushed at the end
   * of pump). Through the Wire instead while it holds bytes of its own not yet given to the
   * socket (a keep-alive, a reject, an extension message): nothing may overtake them.
   */
  private send(req: Pending, buf: Buffer): void {
    const wire = this.wire
    const n = buf.length
    if (this.internals.queued() > 0) {
      this.flush()
      wire.piece(req.piece, req.offset, buf) // counted by the 'upload' listener
      return
    }
    const copy = n <= COPY_MAX
    const need = HEADER_BYTES + (copy ? n : 0)
    let out = this.out
    if (out === undefined || this.outLen + need > out.length) {
      this.flush()
      out = this.out = Buffer.allocUnsafe(Math.max(OUT_BYTES, need))
      this.outStart = this.outLen = 0
    }
    let at = this.outLen
    out.writeUInt32BE(n + 9, at)
    out[at + 4] = ID_PIECE
    out.writeUInt32BE(req.piece, at + 5)
    out.writeUInt32BE(req.offset, at + 9)
    at += HEADER_BYTES
    const buffers = this.seeder.reader.buffers
    if (copy) {
      buf.copy(out, at)
      at += n
      buffers.release(buf)
    }
    this.outLen = at
    if (!copy) {
      this.flush()
      // Called when the socket is done with the bytes (written, or the socket destroyed).
      this.socket.write(buf, () => buffers.release(buf))
    }
    // What Wire.piece counts, and its 'upload' event's listener.
    this.internals.countSent(n)
    this.uploaded += n
    this.seeder.countUpload(n, this.remote)
  }

  /** Hands the send buffer's new bytes to the socket (corked: they join the turn's writev). */
  private flush(): void {
    if (this.outLen === this.outStart) return
    this.socket.write(this.out!.subarray(this.outStart, this.outLen))
    this.outStart = this.outLen
  }

  private failed(req: Pending, err: Error): void {
    this.reading -= req.length
    this.reads--
    if (this.closed) return
    if (err instanceof BadRequestError) {
      // Asking outside the torrent is a broken or hostile client.
      this.abuse(err.message)
      return
    }
    if (err instanceof StaleFileError) this.seeder.staleRejects++
    else {
      this.log.event('error', { peer: this.remote, repo: this.seeder.gen.repo, reason: err.message })
    }
    if (req.respond) req.respond(err) // BEP 6 reject_request when the peer has the fast extension
    else if (req.epoch === this.epoch && this.wire.hasFast) {
      this.flush()
      this.wire.reject(req.piece, req.offset, req.length)
    }
    if (!this.wire.hasFast) this.chokeForAWhile()
    if (!this.pumping) this.pump()
  }

  /**
   * Blocks answered in one turn of the event loop leave in one writev: with Nagle off, each
   * block was two writes (header, data) and a send() each.
   */
  private cork(): void {
    corkUntilNextTurn(this.socket)
  }

  /** Without BEP 6 the only way to refuse a request is to choke, which drops all of them. */
  private chokeForAWhile(): void {
    if (this.unchokeTimer) return
    this.flush()
    this.wire.choke()
    // The Wire forgets the requests it parsed; ours go too (answers of reads under way are dropped).
    this.epoch++
    for (let i = this.pending.length - 1; i >= 0; i--) if (this.pending[i].respond === undefined) this.pending.splice(i, 1)
    this.unchokeTimer = setTimeout(() => {
      this.unchokeTimer = undefined
      if (!this.closed) this.wire.unchoke()
    }, STALE_CHOKE_MS)
    this.unchokeTimer.unref()
  }

  private finish(): void {
    if (this.closed) return
    this.closed = true
    clearTimeout(this.unchokeTimer)
    clearTimeout(this.stallTimer)
    this.pending.length = 0
    this.budget.leave(this)
    this.socket.destroy()
    this.wire.destroy()
    for (const fn of this.closeHandlers) fn()
  }
}

/**
 * Node sets a socket's write threshold only at creation (net.Server's `highWaterMark` sets the
 * reading one too); the writable state's field is what `writableHighWaterMark` reports.
 */
function raiseWriteThreshold(socket: Socket, bytes: number): void {
  const state = (socket as unknown as { _writableState?: { highWaterMark: number } })._writableState
  if (state && state.highWaterMark < bytes) state.highWaterMark = bytes
}
