import { createHash, hash } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { PieceSpan } from '../torrent/piece-map.js'
import { STANDARD_BLOCK, type PeerConnection } from './peer.js'
import { PieceVerifier, WHOLE_OFF_THREAD_BYTES } from './piece-verifier.js'
import { startTrace, traceMark } from './trace.js'

/**
 * The longest block asked of a peer that answers more than 16 KiB (a dsync host, MAX_BLOCK_KEY):
 * a piece of a 32 KiB-piece repository in one request instead of two, one of 64 KiB instead of
 * four. Each request is a message to parse and a block to look up and send on the host, a
 * message to parse and a callback on the client.
 */
const LONG_BLOCK = 64 * 1024
/**
 * In flight per peer: enough bytes to fill a fast link (64 blocks of 16 KiB), and enough
 * requests that a mirror of 1-3 KB files keeps the same bytes in flight (64 requests of
 * 1.2 KB were 77 KB: an idle link at any real round-trip time). Hosts pause reading a peer's
 * requests at 256 queued and hold 4 MiB per peer.
 */
const PIPELINE_REQUESTS = 250
const PIPELINE_BYTES = 1 << 20
/**
 * A peer's pipeline is topped up once a quarter of it has landed, not after every block: each
 * top-up is one send() of corked requests, and one block at a time made the client's
 * socket writes 17% of its profile on one 2 GiB file (a send per 16 KiB received).
 */
const REFILL_SHARE = 0.75
/**
 * A peer that has delivered this much of the download gets a deeper pipeline by bytes
 * (DEEP_FACTOR times PIPELINE_BYTES), topped up only once no more than PIPELINE_BYTES is left
 * in flight: never less than 1 MiB in flight, as before, and 3 MiB of requests a send. Each
 * top-up is a send() that wakes the host; they were the client's largest item on bench swarm
 * `many` (writev 24% of a loaded profile with 2 MiB topped up at half: the woken host
 * preempting the client on 2 cores, its TCP receive done in our send). Not from the first
 * request: a peer that connects first would take the whole of a small pull in its first round
 * and leave the other hosts nothing (test/sync-hosts "bootstraps from all of them"). From its
 * first full pipeline delivered (1 MiB, ~40 ms of a 200 Mbit/s host), not 4 MiB: at the ramp the
 * client's event loop stalls for tens of ms at a time (workers starting, fresh buffers' page
 * faults, the plan's garbage collected), and a host with 1 MiB of requests sends it in ~40 ms
 * and then idles until the client reads again (bench swarm's trace, session 25). Not for
 * the last pieces either: once fewer bytes are left to hand out than every peer's deep
 * pipeline, peers go back to PIPELINE_BYTES, so a slow host does not hold 4 MiB of the end.
 */
const DEEP_AFTER_BYTES = 1 << 20
const DEEP_FACTOR = 4
/**
 * Deep pipelines summed over every peer stay under this: a pause (the stage writer full) stops
 * new requests but not those in flight, so what lands past its high water is what is in flight.
 * With more peers than fit, every peer keeps PIPELINE_BYTES (in flight as before the deep mode).
 */
const DEEP_TOTAL_BYTES = 32 << 20
/**
 * In flight per peer while an early fetch holds its pieces (holdBytes), from the first request:
 * the run parses data.dsync and builds the plan meanwhile, synchronous stretches of 0.1-0.25 s
 * at 20,000 files in which no request is topped up, and a host at 200 Mbit/s sends 5-6 MB in
 * 0.25 s. A host reads past what it holds (4 MiB a peer) once it has sent some: the rest waits
 * in the socket. Summed over the peers, no more than DEEP_TOTAL_BYTES.
 */
const HOLD_DEPTH_BYTES = 6 << 20
/**
 * Held pieces handed to the sink per turn of the event loop once adopted: between turns the
 * sockets are read. All at once, 20-64 MB of small files (1,000-3,000 pieces) kept the loop for
 * 0.15-0.4 s while the peers' blocks waited unread.
 */
const HANDOVER_BYTES = 4 << 20
/**
 * Piece buffers kept for reuse, at most (more pieces than that are rarely being assembled or
 * verified at once: 1 MiB in flight per peer, and the verifier's batches of up to 4 MiB).
 */
const SPARE_BYTES = 16 << 20
const MAX_REFUSED = 64
/**
 * Endgame helps only with a piece in flight at least this long: a host still sending it on
 * time would have it done before a second copy arrived, and each second copy is bytes on
 * the wire for nothing (an update of 100 small files and a 4 MB index from three hosts moved
 * 1.3-2.3 MB of duplicates, a third of its payload). A slow or vanished host still has its
 * pieces duplicated, after this delay.
 */
const ENDGAME_AFTER_MS = 2000

export interface DownloaderOptions {
  pieces: PieceSpan[]
  /** All the torrent's piece hashes, 20 bytes each. */
  hashes: Buffer
  /**
   * Called with each piece's file bytes (pads stripped) once its hash is verified. `data` is
   * only valid during the call: its memory is reused for the next pieces.
   */
  onPiece: (span: PieceSpan, data: Buffer, from: PeerConnection, wholeChecked?: boolean, unchecked?: boolean) => void
  /**
   * For a piece that holds a whole file: that file's own hash (SHA-256 hex from data.dsync,
   * stronger than the piece's SHA-1), else undefined. A match accepts the piece without its
   * SHA-1, which would hash the pad zeros too (15 KB of them for a 1.2 KB file at 16 KiB pieces),
   * and onPiece learns it (`wholeChecked`). A mismatch falls back to the SHA-1, so a piece the
   * torrent vouches for still reaches onPiece. Checked on the verifier thread with the
   * multi-block pieces (verifyOffThread), else on the event loop.
   */
  wholeFileHash?: (span: PieceSpan) => string | undefined
  /**
   * True for a piece whose file the sink checks whole by its SHA-256 (as the file's pieces are
   * written): the piece goes to onPiece unchecked (`unchecked`), without its SHA-1, which would
   * hash each byte of a multi-piece file a second time (and its last piece's pad zeros). The
   * sink then settles every such piece: `confirm` once its file matched, `takeBack` for one whose
   * SHA-1 fails when the file did not (its sender is dropped, the piece fetched again). The
   * download finishes only once every piece is settled. Nothing unchecked is served: the client
   * announces no pieces and answers no requests.
   */
  checkedBySink?: (span: PieceSpan) => boolean
  /** Requests in flight per peer, at most. */
  pipeline?: number
  /** Requested bytes in flight per peer, at most. */
  pipelineBytes?: number
  /**
   * Multi-block pieces are checked on a worker thread (piece-verifier.ts) unless this is
   * false: then every piece is hashed on the event loop, as it completes.
   */
  verifyOffThread?: boolean
  /**
   * An early fetch (src/sync/early-fetch.ts), started before the plan says which pieces the
   * run needs and where they go: verified pieces are copied and held here, up to this many
   * bytes (then nothing more is asked), until `adopt` names the pieces wanted and their sink.
   */
  holdBytes?: number
}

/** A verified piece held by an early fetch until its sink is known. */
interface Held {
  span: PieceSpan
  data: Buffer
  from: PeerConnection
}

interface Flight {
  requests: number
  bytes: number
  /** Block bytes this peer delivered in this download (DEEP_AFTER_BYTES). */
  received: number
  /** The block length asked of this peer. */
  block: number
}

interface Active {
  span: PieceSpan
  /** The piece's bytes as they arrive; a one-block piece uses its block as is. */
  data: Buffer | undefined
  /** `data` is one of the downloader's reusable piece buffers. */
  pooled: boolean
  nextOffset: number
  pending: number
  received: number
  failed: boolean
  /** When its owner took it (Date.now()): endgame waits ENDGAME_AFTER_MS before helping. */
  takenAt: number
}

/**
 * Fetches a set of pieces from every connected peer at once. Each piece goes to one peer
 * (its blocks requested back to back), so a bad piece names the peer that sent it; such a
 * peer is dropped and the piece goes to the others. Only a piece's file bytes are requested:
 * the pad bytes at its end are zeros the downloader supplies itself. When nothing is left to
 * hand out, idle peers duplicate pieces still in flight elsewhere (endgame), so one slow or
 * vanished host does not hold up the end.
 *
 * Events: 'piece' (span, peer), 'hash-fail' (peer, piece), 'refused' (peer, piece),
 * 'peer-done' (peer, reason).
 */
export class Downloader extends EventEmitter {
  /** Pieces never handed out, in order; `head` is the next one. */
  private queue: PieceSpan[]
  private head = 0
  /** Data bytes of the queue's pieces never handed out (DEEP_FACTOR's end). */
  private unassigned = 0
  /** Pieces handed back (peer gone, rejected, bad data): taken before the queue. */
  private readonly retry: PieceSpan[] = []
  /** Pieces verified (one byte per piece number: asked several times per piece, see PieceSet). */
  private readonly done: PieceSet
  /**
   * The peers fetching each piece in flight: one, or two in endgame. An array, not a Set: a
   * Set per piece (a piece per file of a small bootstrap) was ~150 B more to allocate and collect
   * per file (a heap sampling profile of the 200,000-file bootstrap, h12c22).
   */
  private readonly owners = new Map<number, PeerConnection[]>()
  private readonly peers = new Map<PeerConnection, Active[]>()
  /** Pieces a peer refused (BEP 6 reject: e.g. the host's file changed since gendsync). */
  private readonly refused = new Map<PeerConnection, Set<number>>()
  private readonly pipeline: number
  private readonly pipelineBytes: number
  /** Requests and bytes in flight per peer, and the bytes it delivered so far. */
  private readonly inFlight = new Map<PeerConnection, Flight>()
  private finish: (() => void) | undefined
  private fail: ((err: Error) => void) | undefined
  private readonly finished: Promise<void>
  private readonly retrySet = new Set<number>()
  /** Piece buffers to reuse: no allocation per piece once the pipeline is full. */
  private readonly spare: Buffer[] = []
  /** Zeros for hashing pad bytes. */
  private zeros = Buffer.alloc(0)
  private paused = false
  /** Finished or failed: verdicts still arriving change nothing. */
  private ended = false
  private readonly verifier: PieceVerifier | undefined
  private readonly maxDataLength: number
  /**
   * What addPeer hung on each peer, taken off again when the peer is dropped or the download
   * ends: a finished downloader must not live as long as the connections it used (the pull
   * runs several on the same peers: manifest, shard torrents, files; each holds its buffers).
   */
  private readonly hooks = new Map<PeerConnection, { close: (reason: string) => void; unchoke: () => void }>()
  private count: number
  /** An early fetch's verified pieces, until `adopt` (undefined: not holding). */
  private held: Map<number, Held> | undefined
  /** Bytes of the pieces taken while holding and not given back: held, in flight, or with the verifier (holdBytes bounds it). */
  private heldTaken = 0
  /** After `adopt`: the pieces the run wants; others still in flight are dropped as they land. */
  private wanted: PieceSet | undefined
  /** Adopted held pieces not yet given to the sink; the download finishes only once they are. */
  private handover: (Held | undefined)[] | undefined
  private handedOver = 0
  /** Pieces handed to the sink unchecked (checkedBySink) and not settled yet, with their sender. */
  private readonly unsettled = new Map<number, PeerConnection>()

  constructor(private readonly opts: DownloaderOptions) {
    super()
    this.queue = [...opts.pieces]
    for (const p of opts.pieces) this.unassigned += p.dataLength
    this.count = opts.pieces.length
    this.done = new PieceSet(opts.hashes.length / 20)
    if (opts.holdBytes !== undefined) this.held = new Map()
    this.maxDataLength = opts.pieces.reduce((m, p) => Math.max(m, p.dataLength), 0)
    this.pipeline = opts.pipeline ?? PIPELINE_REQUESTS
    this.pipelineBytes = opts.pipelineBytes ?? PIPELINE_BYTES
    this.verifier = opts.verifyOffThread === false ? undefined : new PieceVerifier()
    this.finished = new Promise((resolve, reject) => {
      this.finish = () => { this.end(); resolve() }
      this.fail = err => { this.end(); reject(err) }
    })
    if (this.count === 0 && !this.held) this.finish!()
    const stop = startTrace({
      peers: () => [...this.inFlight].map(([p, f]) => ({ label: p.label, downloaded: p.downloaded, requests: f.requests, bytes: f.bytes, active: this.peers.get(p)?.length ?? 0 })),
      paused: () => this.paused,
      remaining: () => this.remaining,
    })
    if (stop) this.finished.then(stop, stop)
  }

  get total(): number {
    return this.count
  }

  get remaining(): number {
    return this.count - this.done.size
  }

  get peerCount(): number {
    return this.peers.size
  }

  /** Resolves when every piece is verified. */
  whenDone(): Promise<void> {
    return this.finished
  }

  /** Stops handing out pieces (whoever stores them is behind); blocks in flight still land. */
  pause(): void {
    this.paused = true
  }

  resume(): void {
    if (!this.paused) return
    this.paused = false
    for (const peer of this.peers.keys()) this.pump(peer)
    if (this.handover) setImmediate(() => this.handOver())
  }

  /** Fails the download (storing its pieces failed). */
  abort(err: Error): void {
    this.fail!(err)
  }

  addPeer(peer: PeerConnection): void {
    if (this.ended || this.remaining === 0 || peer.closed || this.peers.has(peer)) return
    this.peers.set(peer, [])
    this.inFlight.set(peer, { requests: 0, bytes: 0, received: 0, block: Math.min(peer.maxBlock, LONG_BLOCK) })
    this.refused.set(peer, new Set())
    // A host may choke us for a while (load, reload); requests resume when it unchokes.
    const hooks = { close: (reason: string) => this.dropPeer(peer, reason), unchoke: () => this.pump(peer) }
    this.hooks.set(peer, hooks)
    peer.once('close', hooks.close)
    peer.wire.on('unchoke', hooks.unchoke)
    this.pump(peer)
  }

  private unhook(peer: PeerConnection): void {
    const hooks = this.hooks.get(peer)
    if (!hooks) return
    this.hooks.delete(peer)
    peer.off('close', hooks.close)
    peer.wire.off('unchoke', hooks.unchoke)
  }

  private dropPeer(peer: PeerConnection, reason: string): void {
    this.unhook(peer)
    const active = this.peers.get(peer)
    if (!active) return
    this.peers.delete(peer)
    this.inFlight.delete(peer)
    this.refused.delete(peer)
    this.endgameNotBefore.delete(peer)
    for (const a of active) this.release(a.span, peer)
    this.emit('peer-done', peer, reason)
    for (const other of this.peers.keys()) this.pump(other)
  }

  /**
   * A piece a peer gave up returns to the queue unless another peer still works on it, or
   * it is queued already (blocks buffered behind a failed piece arrive after the peer was
   * dropped and would release its pieces a second time).
   */
  private release(span: PieceSpan, peer: PeerConnection): void {
    const owners = this.owners.get(span.piece)
    const at = owners ? owners.indexOf(peer) : -1
    if (at >= 0) owners!.splice(at, 1)
    if (this.done.has(span.piece) || (owners && owners.length > 0)) return
    this.owners.delete(span.piece)
    // Given back once: a block from a peer already dropped releases its piece a second time.
    if (this.held && owners) this.heldTaken -= span.dataLength
    if (!this.wants(span.piece)) return
    if (!this.retrySet.has(span.piece)) {
      this.retrySet.add(span.piece)
      this.retry.push(span)
    }
  }

  /** Pieces not yet verified, for an error message. */
  missing(): PieceSpan[] {
    return this.opts.pieces.filter(p => !this.done.has(p.piece))
  }

  private pump(peer: PeerConnection): void {
    const active = this.peers.get(peer)
    const flight = this.inFlight.get(peer)
    if (!active || !flight || this.ended || peer.closed || peer.wire.peerChoking || this.paused) return
    // Full by whichever cap binds: bytes for blocks of 16 KiB (64 requests fill 1 MiB), requests for tiny files.
    const deepBytes = this.pipelineBytes * DEEP_FACTOR
    const deep = flight.received >= DEEP_AFTER_BYTES && this.unassigned >= deepBytes * this.peers.size && deepBytes * this.peers.size <= DEEP_TOTAL_BYTES
    const holdDepth = this.held ? Math.min(HOLD_DEPTH_BYTES, Math.floor(DEEP_TOTAL_BYTES / this.peers.size)) : 0
    const maxBytes = holdDepth > this.pipelineBytes ? holdDepth : deep ? deepBytes : this.pipelineBytes
    const refillAt = holdDepth > this.pipelineBytes ? holdDepth / 2 : deep ? this.pipelineBytes : maxBytes * REFILL_SHARE
    if (flight.requests > this.pipeline * REFILL_SHARE || flight.bytes > refillAt) return
    if (flight.requests < this.pipeline && flight.bytes < maxBytes) peer.batch()
    while (flight.requests < this.pipeline && flight.bytes < maxBytes) {
      // Pieces are requested one after the other: only the newest can have blocks left to ask.
      let a: Active | undefined = active[active.length - 1]
      if (!a || a.nextOffset >= a.span.dataLength || a.failed || this.done.has(a.span.piece) || !this.wants(a.span.piece)) {
        if (this.held && this.heldTaken >= this.opts.holdBytes!) break
        const span = this.take(peer)
        if (!span) break
        if (this.held) this.heldTaken += span.dataLength
        a = { span, data: undefined, pooled: false, nextOffset: 0, pending: 0, received: 0, failed: false, takenAt: Date.now() }
        active.push(a)
      }
      const offset = a.nextOffset
      const length = Math.min(flight.block, a.span.dataLength - offset)
      a.nextOffset += length
      a.pending++
      flight.requests++
      flight.bytes += length
      const current = a
      peer.request(a.span.piece, offset, length, (err, block) => {
        this.landed(peer, length, block !== undefined)
        if (block) this.onBlock(peer, current, offset, block)
        else this.onRefused(peer, current, err!)
      })
    }
  }

  /** A request came back (a block, a reject, a cut): its slot in the pipeline is free. */
  private landed(peer: PeerConnection, length: number, delivered: boolean): void {
    const flight = this.inFlight.get(peer)
    if (!flight) return
    flight.requests--
    flight.bytes -= length
    if (delivered) flight.received += length
  }

  private take(peer: PeerConnection): PieceSpan | undefined {
    const refused = this.refused.get(peer)
    for (let i = this.retry.length - 1; i >= 0; i--) {
      const span = this.retry[i]
      if (this.done.has(span.piece)) {
        this.retry.splice(i, 1)
        this.retrySet.delete(span.piece)
        continue
      }
      if (!this.usable(span, peer, refused)) continue
      this.retry.splice(i, 1)
      this.retrySet.delete(span.piece)
      this.owners.set(span.piece, [peer])
      return span
    }
    // Hosts have every piece, so the next queued piece almost always fits: O(1) per take.
    for (let i = this.head; i < this.queue.length; i++) {
      const span = this.queue[i]
      if (!this.usable(span, peer, refused)) {
        if (i === this.head && (this.done.has(span.piece) || this.owners.has(span.piece))) {
          this.head++
          this.unassigned -= span.dataLength
        }
        continue
      }
      if (i === this.head) this.head++
      else {
        // Rare (hosts have every piece): this peer lacks the head piece, it takes a later one.
        this.queue.splice(i, 1)
      }
      this.unassigned -= span.dataLength
      this.owners.set(span.piece, [peer])
      return span
    }
    return this.endgamePiece(peer)
  }

  /** Whether `peer` may take `span` now (no closure per take: one per piece fetched). */
  private usable(span: PieceSpan, peer: PeerConnection, refused: Set<number> | undefined): boolean {
    return !this.done.has(span.piece) && !this.owners.has(span.piece) && peer.hasPiece(span.piece) && !refused?.has(span.piece)
  }

  /** When each peer's next look for endgame work is due (Date.now() ms). */
  private readonly endgameNotBefore = new Map<PeerConnection, number>()
  private endgameTimer: NodeJS.Timeout | undefined
  private endgameTimerAt = Infinity

  /**
   * Endgame: help with a piece another peer has been fetching a while, at most two fetchers
   * a piece. A look that finds nothing says when the next can (the youngest piece in flight
   * becomes old enough at the earliest then; pieces taken later are younger still): until
   * then a peer does not walk every piece in flight again. That walk, once per block
   * received once the queue was empty, was 19% of the event loop's time in a 200,000-file pull.
   */
  private endgamePiece(peer: PeerConnection): PieceSpan | undefined {
    const now = Date.now()
    if (now < (this.endgameNotBefore.get(peer) ?? 0)) return undefined
    let due = now + ENDGAME_AFTER_MS
    for (const [piece, owners] of this.owners) {
      if (owners.length >= 2 || owners.includes(peer) || this.done.has(piece) || !this.wants(piece) || !peer.hasPiece(piece) || this.refused.get(peer)?.has(piece)) continue
      const other = owners[0]
      const a = this.peers.get(other)?.find(x => x.span.piece === piece)
      if (!a) continue
      if (now - a.takenAt < ENDGAME_AFTER_MS) {
        due = Math.min(due, a.takenAt + ENDGAME_AFTER_MS)
        continue
      }
      owners.push(peer)
      return a.span
    }
    this.endgameNotBefore.set(peer, due)
    this.wakeForEndgame(due)
    return undefined
  }

  /** Idle peers look again once the oldest piece in flight is due for endgame help. */
  private wakeForEndgame(at: number): void {
    if (this.endgameTimer && this.endgameTimerAt <= at) return
    clearTimeout(this.endgameTimer)
    this.endgameTimerAt = at
    this.endgameTimer = setTimeout(() => {
      this.endgameTimer = undefined
      this.endgameTimerAt = Infinity
      if (this.remaining === 0) return
      for (const peer of this.peers.keys()) this.pump(peer)
      // Peers whose next look is due later still need waking then.
      const now = Date.now()
      const later = [...this.endgameNotBefore.values()].filter(t => t > now)
      if (later.length > 0) this.wakeForEndgame(Math.min(...later))
    }, Math.max(at - Date.now(), 10))
    this.endgameTimer.unref()
  }

  /**
   * A request that failed without the connection closing: rejected (the host no longer
   * offers the piece) or cut by a choke. Rejected pieces go to other peers; after a choke
   * the piece is simply requested again on unchoke.
   */
  private onRefused(peer: PeerConnection, a: Active, err: Error): void {
    a.pending--
    if (peer.closed) return // the close handler requeues the peer's pieces
    if (/rejected/.test(err.message)) {
      const refused = this.refused.get(peer)!
      refused.add(a.span.piece)
      this.emit('refused', peer, a.span.piece)
      // A peer that refuses piece after piece (have_all, then reject everything) is no host.
      if (refused.size >= MAX_REFUSED && peer.downloaded === 0) {
        peer.close(`refused ${refused.size} pieces and sent none`)
        return
      }
    }
    a.failed = true
    this.retire(peer, a)
    this.release(a.span, peer)
    for (const other of this.peers.keys()) this.pump(other)
  }

  /** `block` is valid only during the call (a view of the received bytes): kept bytes are copied. */
  private onBlock(peer: PeerConnection, a: Active, offset: number, block: Buffer): void {
    a.pending--
    if (this.ended || this.done.has(a.span.piece) || a.failed) {
      this.retire(peer, a)
      return this.pump(peer)
    }
    // A one-block piece completes below, within this call.
    if (block.length === a.span.dataLength) a.data = block
    else {
      if (!a.data) {
        a.data = this.spare.pop() ?? Buffer.allocUnsafeSlow(this.maxDataLength)
        a.pooled = true
      }
      block.copy(a.data, offset)
    }
    a.received += block.length
    if (a.received === a.span.dataLength) this.complete(peer, a)
    this.pump(peer)
  }

  private complete(peer: PeerConnection, a: Active): void {
    this.retire(peer, a)
    if (peer.closed && !this.peers.has(peer)) {
      // Data from a peer already dropped (it arrived in the same read): not trusted.
      this.release(a.span, peer)
      return
    }
    const span = a.span
    const data = a.data!.subarray(0, span.dataLength)
    // The sink checks this piece's file whole (its SHA-256): no SHA-1 unless that fails.
    if (!this.held && this.opts.checkedBySink?.(span)) {
      this.acceptUnchecked(peer, span, data)
      return this.recycle(a)
    }
    const sha256 = this.opts.wholeFileHash?.(span)
    if (sha256 !== undefined) {
      this.checkWhole(peer, span, data, sha256)
      return this.recycle(a)
    }
    // A piece that came as one long block is a view of the socket's buffer: copied to be
    // checked off the event loop, as its blocks would have been (a 16 KiB one is hashed here).
    if (!a.pooled && this.verifier && span.dataLength > STANDARD_BLOCK) {
      const copy = this.spare.pop() ?? Buffer.allocUnsafeSlow(this.maxDataLength)
      data.copy(copy)
      a.data = copy
      a.pooled = true
    }
    if (a.pooled && this.verifier) {
      // Off the event loop: the piece counts once its verdict is back (a copy of it from an
      // endgame helper may be verified meanwhile; the first good one counts).
      const buffer = a.data!
      a.data = undefined
      a.pooled = false
      this.verifier.verify(buffer, span.dataLength, span.pieceLength - span.dataLength, this.expectedHash(span), (ok, back) => {
        if (this.ended) return
        if (ok === undefined) return this.lost(span, peer)
        if (ok) this.accept(peer, span, back.subarray(0, span.dataLength))
        else this.reject(peer, span)
        this.recycleBuffer(back)
      })
      return
    }
    if (this.pieceHashMatches(span, data)) this.accept(peer, span, data)
    else this.reject(peer, span)
    this.recycle(a)
  }

  /**
   * A piece that is a whole file, checked by its SHA-256: on the verifier thread (which copies
   * it: one buffer per batch of files, the SHA-256 off the event loop) or here (a small pull; a
   * file under WHOLE_OFF_THREAD_BYTES). A mismatch is
   * checked by the piece's SHA-1 (rare: a bad peer, or data.dsync disagreeing with the torrent).
   */
  private checkWhole(peer: PeerConnection, span: PieceSpan, data: Buffer, sha256: string): void {
    if (this.verifier && data.length >= WHOLE_OFF_THREAD_BYTES) {
      this.verifier.checkWhole(data, sha256, (ok, kept) => { if (!this.ended) this.wholeVerdict(peer, span, kept, ok) })
    } else this.wholeVerdict(peer, span, data, hash('sha256', data, 'hex') === sha256)
  }

  /** `ok`: the whole file matched its SHA-256 (undefined: the verifier failed before its verdict). */
  private wholeVerdict(peer: PeerConnection, span: PieceSpan, data: Buffer, ok: boolean | undefined): void {
    if (ok === undefined) this.lost(span, peer)
    else if (ok) this.accept(peer, span, data, true)
    else if (this.pieceHashMatches(span, data)) this.accept(peer, span, data)
    else this.reject(peer, span)
  }

  /** A verified piece: stored, counted (once: an endgame copy verified later is dropped). */
  private accept(peer: PeerConnection, span: PieceSpan, data: Buffer, wholeChecked = false): void {
    peer.piecesVerified++
    if (this.ended || this.done.has(span.piece)) return
    this.owners.delete(span.piece)
    // Asked for by an early fetch, landed after the plan left it out.
    if (!this.wants(span.piece)) return
    this.done.add(span.piece)
    if (this.held) return this.hold(span, data, peer)
    try {
      this.opts.onPiece(span, data, peer, wholeChecked)
    } catch (err) {
      // Storing failed (disk full, a file that does not match its SHA-256): the download fails.
      this.fail!(err as Error)
      return
    }
    this.emit('piece', span, peer)
    this.finishIfSettled()
  }

  /** Every piece is in the sink, checked, and no adopted held piece waits: the download is done. */
  private finishIfSettled(): void {
    if (this.remaining === 0 && !this.handover && this.unsettled.size === 0 && !this.ended) this.finish!()
  }

  /**
   * A piece whose file the sink checks (checkedBySink): counted as done (not asked again), its
   * sender kept until the sink settles it (confirm, takeBack).
   */
  private acceptUnchecked(peer: PeerConnection, span: PieceSpan, data: Buffer): void {
    if (this.ended || this.done.has(span.piece)) return
    this.owners.delete(span.piece)
    if (!this.wants(span.piece)) return
    this.done.add(span.piece)
    this.unsettled.set(span.piece, peer)
    try {
      this.opts.onPiece(span, data, peer, false, true)
    } catch (err) {
      this.fail!(err as Error)
      return
    }
    this.emit('piece', span, peer)
  }

  /** The sink found this unchecked piece's file whole and right: its sender gets the credit. */
  confirm(piece: number): void {
    const peer = this.unsettled.get(piece)
    if (peer === undefined) return
    this.unsettled.delete(piece)
    peer.piecesVerified++
    this.finishIfSettled()
  }

  /**
   * The sink found this unchecked piece bad (its file failed its SHA-256, then the piece its
   * SHA-1): the peer that sent it is dropped, as for a piece failing its hash here, and the
   * piece is fetched again from the others.
   */
  takeBack(span: PieceSpan): void {
    if (this.ended) return
    const peer = this.unsettled.get(span.piece)
    this.unsettled.delete(span.piece)
    this.done.delete(span.piece)
    if (!this.retrySet.has(span.piece)) {
      this.retrySet.add(span.piece)
      this.retry.push(span)
    }
    if (peer) {
      this.emit('hash-fail', peer, span.piece)
      if (!peer.closed) return peer.close(`sent data failing the hash check (piece ${span.piece})`)
    }
    for (const other of this.peers.keys()) this.pump(other)
  }

  /** A piece failing its hash: the peer that sent it is dropped, the piece goes to the others. */
  private reject(peer: PeerConnection, span: PieceSpan): void {
    this.emit('hash-fail', peer, span.piece)
    this.release(span, peer)
    const gone = !this.peers.has(peer)
    peer.close(`sent data failing the hash check (piece ${span.piece})`)
    // Dropping the peer wakes the others; a peer already gone does not, so wake them here.
    if (gone) for (const other of this.peers.keys()) this.pump(other)
  }

  /** The verifier failed before its verdict (it should not): the piece is fetched again. */
  private lost(span: PieceSpan, peer: PeerConnection): void {
    this.release(span, peer)
    for (const other of this.peers.keys()) this.pump(other)
  }

  private wants(piece: number): boolean {
    return this.wanted === undefined || this.wanted.has(piece)
  }

  /** An early fetch's verified piece: copied (`data` is reused) and kept until `adopt`. */
  private hold(span: PieceSpan, data: Buffer, from: PeerConnection): void {
    const copy = Buffer.allocUnsafeSlow(data.length)
    data.copy(copy)
    this.held!.set(span.piece, { span, data: copy, from })
    this.emit('piece', span, from)
  }

  /**
   * An early fetch's pieces are now known: `pieces` are the ones wanted (in the order to ask
   * for them) and `sink` where they go. Held pieces among them go to the sink from now on (a
   * few MiB a turn of the event loop), the others are dropped, as are pieces in flight outside
   * `pieces` when they land; fetching resumes.
   */
  adopt(pieces: PieceSpan[], sink: Pick<DownloaderOptions, 'onPiece' | 'wholeFileHash' | 'checkedBySink'>): void {
    const held = this.held
    if (!held) throw new Error('Downloader.adopt: not an early fetch')
    let asked = 0
    for (const f of this.inFlight.values()) asked += f.bytes
    let heldBytes = 0
    for (const h of held.values()) heldBytes += h.data.length
    traceMark('early-adopted', { held: heldBytes, pieces: held.size, asked })
    this.held = undefined
    this.opts.onPiece = sink.onPiece
    this.opts.wholeFileHash = sink.wholeFileHash
    this.opts.checkedBySink = sink.checkedBySink
    this.opts.pieces = pieces
    this.count = pieces.length
    const wanted = this.wanted = new PieceSet(this.opts.hashes.length / 20)
    for (const p of pieces) wanted.add(p.piece)
    this.done.keepOnly(wanted)
    // Pieces in flight stay with their peers; the rest of the wanted ones are queued afresh.
    this.queue = pieces.filter(p => !this.done.has(p.piece) && !this.owners.has(p.piece))
    this.head = 0
    this.unassigned = 0
    for (const p of this.queue) this.unassigned += p.dataLength
    this.retry.length = 0
    this.retrySet.clear()
    if (this.ended) return
    this.handover = [...held.values()].filter(h => wanted.has(h.span.piece))
    this.handedOver = 0
    for (const peer of this.peers.keys()) this.pump(peer)
    this.handOver()
  }

  /** Gives the sink the next HANDOVER_BYTES of adopted held pieces; the rest at the next turn. */
  private handOver(): void {
    const queue = this.handover
    if (!queue || this.ended) return
    let bytes = 0
    // Not while the sink is behind (paused): its copies and the held ones would both be in memory.
    while (this.handedOver < queue.length && bytes < HANDOVER_BYTES && !this.paused) {
      const { span, data, from } = queue[this.handedOver]!
      queue[this.handedOver++] = undefined
      bytes += data.length
      try {
        this.opts.onPiece(span, data, from, false)
      } catch (err) {
        this.fail!(err as Error)
        return
      }
    }
    if (this.handedOver < queue.length) {
      if (!this.paused) setImmediate(() => this.handOver())
      return
    }
    this.handover = undefined
    this.finishIfSettled()
  }

  /** Ends a download whose pieces are no longer wanted (an early fetch the run did not use). */
  stop(): void {
    if (this.ended) return
    this.held = undefined
    this.finished.catch(() => {})
    this.fail!(new Error('download stopped'))
  }

  /**
   * Finished or failed: the peers keep no reference to this downloader, apart from the
   * callbacks of requests still in flight (endgame copies), which land or fail with their
   * connection and find nothing to do.
   */
  private end(): void {
    this.ended = true
    this.verifier?.close()
    for (const peer of [...this.hooks.keys()]) this.unhook(peer)
    this.peers.clear()
    clearTimeout(this.endgameTimer)
    this.endgameTimer = undefined
  }

  private expectedHash(span: PieceSpan): Buffer {
    return this.opts.hashes.subarray(span.piece * 20, span.piece * 20 + 20)
  }

  /** The piece's SHA-1 from the torrent, pad zeros included. */
  private pieceHashMatches(span: PieceSpan, data: Buffer): boolean {
    const hash = createHash('sha1').update(data)
    const pad = span.pieceLength - span.dataLength
    if (pad > 0) {
      if (this.zeros.length < pad) this.zeros = Buffer.alloc(span.pieceLength)
      hash.update(this.zeros.subarray(0, pad))
    }
    return hash.digest().equals(this.expectedHash(span))
  }

  /** Gives a finished piece's buffer back for the next piece (its blocks have all landed). */
  private recycle(a: Active): void {
    if (a.pooled) this.recycleBuffer(a.data!)
    a.data = undefined
    a.pooled = false
  }

  private recycleBuffer(buffer: Buffer): void {
    if (buffer.length === this.maxDataLength && this.spare.length * this.maxDataLength < SPARE_BYTES) this.spare.push(buffer)
  }

  private retire(peer: PeerConnection, a: Active): void {
    const active = this.peers.get(peer)
    if (!active) return
    if (a.pending !== 0 || !(a.received === a.span.dataLength || a.failed || this.done.has(a.span.piece))) return
    // Pieces mostly finish in the order they were asked for: the oldest leaves by shift(), which
    // V8 does in place (~0.1 us); splice(0, 1) moved the other ~250 entries (~2 us: 0.78 s of a
    // 200,000-file pull's event loop).
    if (active[0] === a) active.shift()
    else {
      const i = active.indexOf(a)
      if (i >= 0) active.splice(i, 1)
    }
  }
}

/**
 * A set of piece numbers as one byte per piece of the torrent: the downloader asks whether a
 * piece is done 4-6 times per piece (take, onBlock, complete, accept, retire), and a Set of
 * 200,000 numbers cost ~0.2 s of a 200,000-file pull's event loop in those look-ups.
 */
class PieceSet {
  private bits: Uint8Array
  size = 0

  constructor(pieces: number) {
    this.bits = new Uint8Array(pieces)
  }

  has(piece: number): boolean {
    return this.bits[piece] === 1
  }

  add(piece: number): void {
    if (piece >= this.bits.length) {
      const bigger = new Uint8Array(Math.max(piece + 1, this.bits.length * 2))
      bigger.set(this.bits)
      this.bits = bigger
    }
    if (this.bits[piece] === 1) return
    this.bits[piece] = 1
    this.size++
  }

  /** Takes `piece` out; true if it was in. */
  delete(piece: number): boolean {
    if (this.bits[piece] !== 1) return false
    this.bits[piece] = 0
    this.size--
    return true
  }

  /** Drops every piece `other` does not hold. */
  keepOnly(other: PieceSet): void {
    for (let i = 0; i < this.bits.length; i++) {
      if (this.bits[i] === 1 && !other.has(i)) {
        this.bits[i] = 0
        this.size--
      }
    }
  }
}
