import { EventEmitter } from 'node:events'
import { connect, type Socket } from 'node:net'
import Wire from 'bittorrent-protocol'
import { PEER_CONNECT_TIMEOUT_MS, PEER_IDLE_TIMEOUT_MS } from '../config/defaults.js'
import { formatAddress, type PeerAddress } from './address.js'
import { MessageFramer } from './framer.js'
import { metadataFetcher, motdReceiver, type MetadataFetcher } from './extensions.js'
import { pexExtension } from './pex.js'
import { corkUntilNextTurn, uncorkNow } from '../shared/cork.js'
import { IDLE_TIMEOUT_KEY, MAX_BLOCK_KEY } from '../shared/wire-protocol.js'

export { formatAddress, parseAddress, type PeerAddress } from './address.js'

export interface PeerOptions {
  address: PeerAddress
  infoHash: string
  peerId: string
  localAddress?: string
  connectTimeoutMs?: number
  /** No block for this long while requests are outstanding: the peer is dropped. */
  idleTimeoutMs?: number
  onMotd?: (text: string) => void
  /** BEP 11: what we tell the peer (hosts we know), and what to do with the hosts it names. */
  pex?: { known: () => PeerAddress[]; onPeers: (peers: PeerAddress[]) => void }
}

/** The block length every BitTorrent peer answers. */
export const STANDARD_BLOCK = 16 * 1024

/** Slack on top of what we asked for: protocol messages, haves, a metadata exchange. */
const RECEIVE_SLACK = 4 << 20
/**
 * Each connection reads into one buffer of this size, again and again (framer.ts says what
 * is copied out of it). A fresh buffer per read (64 KiB each) was 2 GB of short-lived
 * memory on a 2 GiB pull; larger reads also mean fewer turns of the event loop per byte.
 */
const READ_BUFFER = 256 * 1024
/**
 * Keep-alives to a peer that does not name its idle timeout: BitTorrent peers commonly drop a
 * connection silent for 2 minutes, a dsync host before its extended handshake for 5.
 */
const KEEP_ALIVE_MS = 60_000
/** Keep-alives to a dsync host come at a quarter of the idle timeout it names, not more often than this. */
const MIN_KEEP_ALIVE_MS = 250

/**
 * How often to send a keep-alive to a peer that said it closes connections silent for
 * `named` ms (extended handshake); a quarter of it leaves room for a host's once-a-second
 * sweep and a busy event loop here.
 */
export function keepAliveInterval(named: unknown): number {
  if (typeof named !== 'number' || !Number.isFinite(named) || named <= 0) return KEEP_ALIVE_MS
  return Math.min(KEEP_ALIVE_MS, Math.max(MIN_KEEP_ALIVE_MS, Math.floor(named / 4)))
}

/** Where a socket's reads go: set once the connection is wrapped (nothing arrives before). */
interface ReadSink { push: (chunk: Buffer) => void }

/** A block, or why the request failed (rejected, choked, connection gone). */
export type BlockCallback = (err: Error | undefined, block: Buffer | undefined) => void

/**
 * The Wire's parser entry point: the stream's `_write`, fed whole messages (see MessageFramer),
 * and what its handler of a parsed piece message uses (takeBlock).
 */
type WireParser = {
  _write(data: Uint8Array, cb: (err?: Error | null) => void): void
} & WireBlocks
const parsed = () => {}

/** A request the Wire keeps until its block (or a refusal) comes. */
interface WireRequest { piece: number; offset: number; length: number }

/** What request() uses of the Wire to put a request in its list as its own `request` does. */
interface WireSend {
  requests: (WireRequest & { callback(err: Error | null | undefined, block: Uint8Array | null | undefined): void })[]
  _finished: boolean
  peerChoking: boolean
  _encryptor: unknown
  _timeout: unknown
  _resetTimeout(setAgain: boolean): void
}

/** A request message's bytes: 4 of length, the id, index, begin and length. */
const REQUEST_BYTES = 17
/** A send buffer's first size: a full pipeline's top-up (PIPELINE_REQUESTS in downloader.ts) fits. */
const REQUESTS_SEND_START = 256 * REQUEST_BYTES

/** What takeBlock uses of bittorrent-protocol's Wire. */
export interface WireBlocks {
  /** Outstanding requests, oldest first (a refusal or a cancel, rare, may take one from the middle out of order). */
  requests: WireRequest[]
  downloaded: number
  /** Resets the Wire's request timeout and calls the request's callback. */
  _callback(request: WireRequest, err: null, block: Uint8Array): void
}

/**
 * Hands the block in the whole piece message at `at` in `chunk` (BEP 3: <len><7><index><begin>
 * <block>, `length` bytes with the prefix) to its request, as the Wire's `_onPiece` does: found
 * in its list, answered through its `_callback` (which resets its timeout), counted in its
 * `downloaded`. But the list keeps its order: `_onPiece` took a request out by moving the last
 * one into its place, so the blocks after it were found ever deeper (~94 of 250 requests on
 * average, simulated), and a front request taken that way kept later blocks off a first-only
 * fast path (a small bootstrap's profile, h12c21: nearly every block went through the scan). A
 * host answers nearly in the order asked: the block's request is at or near the front, taken
 * off with shift() after the few before it move up one. Not kept
 * from `_onPiece`: its debug string, rate meter and 'download'/'piece' events (nothing listens).
 */
export function takeBlock(wire: WireBlocks, chunk: Buffer, at: number, length: number): void {
  const piece = chunk.readUInt32BE(at + 5)
  const offset = chunk.readUInt32BE(at + 9)
  const block = chunk.subarray(at + 13, at + length)
  const requests = wire.requests
  let i = 0
  while (i < requests.length && (requests[i].piece !== piece || requests[i].offset !== offset || requests[i].length !== block.length)) i++
  if (i < requests.length) {
    const request = requests[i]
    for (let k = i; k > 0; k--) requests[k] = requests[k - 1]
    requests.shift()
    wire._callback(request, null, block)
  }
  // A block asked for no more (cancelled, refused) is counted too, as the Wire counts it.
  wire.downloaded += block.length
}

/**
 * A block request as the Wire keeps it in its list (piece, offset, length, and `callback`, which
 * it and takeBlock call with the block or why it failed). One object per request: its
 * `callback` is a method, not a closure over the request's own values (one request per file of
 * a small bootstrap).
 */
class BlockRequest {
  /** Set while the Wire's own request() runs: a refusal then is answered later, never inside the caller's loop. */
  inside = false

  constructor(private readonly peer: PeerConnection, readonly piece: number, readonly offset: number, readonly length: number, private readonly done: BlockCallback) {}

  callback(err: Error | null | undefined, block: Uint8Array | null | undefined): void {
    const done = this.done
    if (err || !block) {
      // A refused or cancelled request gives back its receive credit.
      this.peer.answered(this.length, false)
      const why = err ?? new Error('empty block')
      if (this.inside) queueMicrotask(() => done(why, undefined))
      else done(why, undefined)
      return
    }
    if (block.length !== this.length) return done(new Error('block of the wrong length'), undefined)
    this.peer.answered(this.length, true)
    done(undefined, block instanceof Buffer ? block : Buffer.from(block.buffer, block.byteOffset, block.byteLength))
  }
}

/**
 * One outgoing peer-wire connection. Wraps bittorrent-protocol's Wire behind the few calls
 * the downloader needs, and guards what the Wire does not: a peer that sends more bytes
 * than were requested (bittorrent-protocol buffers any message length a peer claims) is
 * cut off, as is one that stops answering.
 */
export class PeerConnection extends EventEmitter {
  readonly label: string
  readonly wire: Wire
  private readonly socket: Socket
  private allowance = RECEIVE_SLACK
  private received = 0
  /** Payload bytes of blocks received (checked or not). */
  downloaded = 0
  /** Pieces from this connection that passed their hash check (counted by the downloader). */
  piecesVerified = 0
  closed = false
  closeReason = ''
  private metadata: MetadataFetcher | undefined
  private keepAlive: NodeJS.Timeout | undefined
  /** Request messages not yet sent (request, sendQueued): `outUsed` bytes of `out`. */
  private out: Buffer | undefined
  private outUsed = 0
  private outTurn: NodeJS.Immediate | undefined

  private constructor(readonly opts: PeerOptions, socket: Socket, reads: ReadSink) {
    super()
    this.label = formatAddress(opts.address)
    this.socket = socket
    this.wire = new Wire('tcpOutgoing')
    this.wire.use(metadataFetcher())
    if (opts.onMotd) this.wire.use(motdReceiver(opts.onMotd))
    if (opts.pex) this.wire.use(pexExtension(opts.pex.known, opts.pex.onPeers))
    this.metadata = (this.wire as unknown as { ut_metadata: MetadataFetcher }).ut_metadata
    // Incoming bytes reach the Wire's parser in whole messages, not through a stream pipe
    // (framer.ts says why); outgoing messages still flow through the Wire's stream.
    const parser = this.wire as unknown as WireParser
    // A block's message goes straight to its request (takeBlock), without the parser's views and
    // calls per message: most messages a pull receives are blocks, one per file of a mirror of
    // small files.
    const framer = new MessageFramer(
      bytes => { if (!this.closed) parser._write(bytes, parsed) },
      reason => this.close(`sent more data than was requested (${reason})`),
      RECEIVE_SLACK,
      true,
      (chunk, at, length) => { if (!this.closed) takeBlock(parser, chunk, at, length) },
    )
    reads.push = chunk => {
      this.received += chunk.length
      if (this.received > this.allowance) return this.close('sent more data than was requested')
      framer.push(chunk)
    }
    this.wire.pipe(socket)
    // Every other message the Wire sends (interested, keep-alive, extended, a cancel) goes through
    // its stream, drained into the socket in a microtask: the requests queued before it are
    // written first, so nothing the Wire sends overtakes a request made before it (a cancel
    // ahead of its own request would reach the peer as a cancel of nothing, then the request).
    const wirePush = this.wire as unknown as { _push(data: Uint8Array): unknown }
    const push = wirePush._push.bind(this.wire)
    wirePush._push = data => {
      this.sendQueued()
      return push(data)
    }
    socket.on('error', err => this.close(err.message))
    socket.on('close', () => this.close('connection closed'))
    this.wire.on('error', (err: Error) => this.close(err.message))
    this.wire.on('close', () => this.close('connection closed'))
    this.wire.setTimeout(opts.idleTimeoutMs ?? PEER_IDLE_TIMEOUT_MS, true)
    this.keepAlivesEvery(KEEP_ALIVE_MS)
    this.wire.on('extended', (ext: string) => {
      if (ext === 'handshake') this.keepAlivesEvery(keepAliveInterval(this.wire.peerExtendedHandshake[IDLE_TIMEOUT_KEY]))
    })
    this.wire.on('timeout', () => {
      const r = (this.wire as unknown as { requests: { piece: number; offset: number; length: number }[] }).requests[0]
      this.close(r ? `timed out waiting for data (piece ${r.piece} at ${r.offset}+${r.length})` : 'timed out waiting for data')
    })
  }

  /**
   * A client may send nothing for a long while: a deep pipeline waiting on a slow link, a
   * connection opened ahead of its shard's turn, a pull between its stages. A host closes a
   * connection that sends it nothing for its idle timeout, so a keep-alive (4 bytes) goes out
   * at a steady pace whatever else is sent: unref'd, it never holds the process open.
   */
  private keepAlivesEvery(ms: number): void {
    clearInterval(this.keepAlive)
    const wire = this.wire as unknown as { keepAlive(): void }
    this.keepAlive = setInterval(() => { if (!this.closed) wire.keepAlive() }, ms).unref()
  }

  /** Connects and handshakes; resolves once the peer answered for the right torrent. */
  static open(opts: PeerOptions): Promise<PeerConnection> {
    return new Promise((resolve, reject) => {
      const reads: ReadSink = { push: () => undefined }
      const buffer = Buffer.allocUnsafe(READ_BUFFER)
      const socket = connect({
        host: opts.address.host, port: opts.address.port, localAddress: opts.localAddress,
        onread: { buffer, callback: n => { reads.push(buffer.subarray(0, n)); return true } },
      })
      socket.setNoDelay(true)
      const timer = setTimeout(() => {
        socket.destroy()
        reject(new Error('no answer (connect or handshake timed out)'))
      }, opts.connectTimeoutMs ?? PEER_CONNECT_TIMEOUT_MS)
      const fail = (err: Error) => {
        clearTimeout(timer)
        reject(err)
      }
      socket.once('error', fail)
      socket.once('close', () => fail(new Error('connection closed before the handshake')))
      socket.once('connect', () => {
        socket.removeListener('error', fail)
        const peer = new PeerConnection(opts, socket, reads)
        peer.once('close', (reason: string) => fail(new Error(reason)))
        peer.wire.once('handshake', (infoHash: string) => {
          clearTimeout(timer)
          if (infoHash !== opts.infoHash) {
            peer.close('answered for another torrent')
            return reject(new Error('answered for another torrent'))
          }
          peer.removeAllListeners('close')
          socket.removeAllListeners('close')
          socket.on('close', () => peer.close('connection closed'))
          resolve(peer)
        })
        peer.wire.handshake(opts.infoHash, opts.peerId, { fast: true })
      })
    })
  }

  /** Waits until the peer lets us request (unchoked), then declares interest. */
  async ready(timeoutMs = 15_000): Promise<void> {
    this.wire.interested()
    if (!this.wire.peerChoking) return
    // Both listeners come off once either fires: the connection outlives this wait.
    await new Promise<void>((resolve, reject) => {
      const settle = (err?: Error) => {
        clearTimeout(timer)
        this.wire.off('unchoke', unchoked)
        this.off('close', closed)
        if (err) reject(err)
        else resolve()
      }
      const unchoked = () => settle()
      const closed = (reason: string) => settle(new Error(reason))
      const timer = setTimeout(() => settle(new Error('peer kept us choked')), timeoutMs)
      this.wire.once('unchoke', unchoked)
      this.once('close', closed)
    })
  }

  /**
   * The longest block this peer says it answers: a dsync host names it in its extended
   * handshake (MAX_BLOCK_KEY, which arrives before its unchoke); any other peer, 16 KiB.
   */
  get maxBlock(): number {
    const said = this.wire.peerExtendedHandshake[MAX_BLOCK_KEY]
    return typeof said === 'number' && Number.isInteger(said) && said > STANDARD_BLOCK ? said : STANDARD_BLOCK
  }

  hasPiece(index: number): boolean {
    return this.wire.peerPieces.get(index)
  }

  /**
   * Requests issued from now until the next turn of the event loop leave in one TCP send:
   * with Nagle off, each 17-byte request was its own send() (17% of a pull's CPU).
   */
  batch(): void {
    corkUntilNextTurn(this.socket)
  }

  /** Sends the batched requests now (see uncorkNow). */
  flush(): void {
    this.sendQueued()
    uncorkNow(this.socket)
  }

  /**
   * Requests one block. `done` runs synchronously as the block is parsed: the block is a view
   * of the received bytes, valid only during the call (copy what must be kept).
   *
   * The request goes into the Wire's list as the Wire's own `request` puts it there (its
   * timeout, its choke, reject and close handling all work on that list), but its 17 bytes are
   * written into this connection's send buffer, sent whole at the next turn of the event loop
   * (sendRequests), not pushed through the Wire's stream one message at a time: there each
   * request was an array, a 17-byte Uint8Array, a stream push, a microtask's drain, a corked
   * socket.write and its entry in the writev (a small bootstrap sends one request per file:
   * ~0.6 s of its event loop, h12c22). A choked or closed Wire, or one that encrypts, takes
   * the Wire's own path (which refuses, or encrypts).
   */
  request(piece: number, offset: number, length: number, done: BlockCallback): void {
    this.allowance += length + 13
    const request = new BlockRequest(this, piece, offset, length, done)
    const wire = this.wire as unknown as WireSend
    if (wire._finished || wire.peerChoking || wire._encryptor) {
      request.inside = true
      this.wire.request(piece, offset, length, (err, block) => request.callback(err, block))
      request.inside = false
    } else {
      wire.requests.push(request)
      if (!wire._timeout) wire._resetTimeout(true)
      this.queueRequest(piece, offset, length)
    }
  }

  /** A request answered (BlockRequest): the receive credit of a refused one comes back. */
  answered(length: number, delivered: boolean): void {
    if (delivered) this.downloaded += length
    else this.allowance -= length + 13
  }

  /** Appends a request message (BEP 3: <len=13><6><index><begin><length>) to the next send. */
  private queueRequest(piece: number, offset: number, length: number): void {
    let out = this.out
    if (out === undefined || this.outUsed + REQUEST_BYTES > out.length) {
      const bigger = Buffer.allocUnsafe(Math.max(REQUESTS_SEND_START, (out?.length ?? 0) * 2))
      if (out !== undefined) out.copy(bigger, 0, 0, this.outUsed)
      this.out = out = bigger
    }
    const at = this.outUsed
    out.writeUInt32BE(13, at)
    out[at + 4] = 6
    out.writeUInt32BE(piece, at + 5)
    out.writeUInt32BE(offset, at + 9)
    out.writeUInt32BE(length, at + 13)
    this.outUsed = at + REQUEST_BYTES
    this.outTurn ??= setImmediate(this.sendQueued)
  }

  /** The requests queued this turn, in one write (the socket keeps the buffer: a new one next time). */
  private readonly sendQueued = (): void => {
    clearImmediate(this.outTurn)
    this.outTurn = undefined
    const out = this.out
    if (out === undefined || this.outUsed === 0) return
    this.out = undefined
    const used = this.outUsed
    this.outUsed = 0
    if (!this.closed) this.socket.write(used === out.length ? out : out.subarray(0, used))
  }

  fetchMetadata(maxBytes: number, timeoutMs = 20_000): Promise<Buffer> {
    this.allowance += maxBytes
    return this.metadata!.fetch(this.opts.infoHash, maxBytes, timeoutMs)
  }

  close(reason: string): void {
    if (this.closed) return
    this.closed = true
    this.closeReason = reason
    clearInterval(this.keepAlive)
    clearImmediate(this.outTurn)
    this.outTurn = undefined
    this.out = undefined
    this.wire.destroy()
    this.socket.destroy()
    this.emit('close', reason)
  }
}
