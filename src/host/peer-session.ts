import type { Socket } from 'node:net'
import type { Wire } from 'bittorrent-protocol'
import { StaleFileError } from './fd-cache.js'
import type { HostLog } from './log.js'
import { BadRequestError } from './piece-reader.js'
import type { Seeder } from './seeder.js'
import { MOTD_EXTENSION } from '../shared/wire-protocol.js'

/** How long a peer without the fast extension stays choked after asking for a stale block. */
const STALE_CHOKE_MS = 10_000
/** A peer with more requests than this queued is misbehaving (clients keep a few hundred). */
const MAX_QUEUED = 2048

/**
 * One leecher connected to one repository: answer the handshake, say we have every piece,
 * unchoke at once (a host only seeds, and its allowlist already chose who may connect), and
 * serve block requests from the piece reader.
 */
export class PeerSession {
  uploaded = 0
  private queued = 0
  private closed = false
  private readonly closeHandlers: (() => void)[] = []
  private unchokeTimer: NodeJS.Timeout | undefined

  constructor(
    private readonly seeder: Seeder,
    private readonly wire: Wire,
    private readonly socket: Socket,
    readonly remote: string,
    private readonly log: HostLog,
  ) {
    const done = () => this.finish()
    socket.once('close', done)
    wire.once('close', done)
    wire.once('finish', done)
    wire.use(seeder.metadataExt)
    wire.use(seeder.motdExt)
    wire.handshake(seeder.gen.infoHash, seeder.peerId, { dht: false, fast: true })
    if (wire.hasFast) wire.haveAll()
    else wire.bitfield(seeder.bitfield)
    wire.unchoke()
    wire.setKeepAlive(true)
    wire.on('request', (piece: number, offset: number, length: number, respond: (err: Error | null, buf?: Uint8Array) => void) =>
      this.serve(piece, offset, length, respond))
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
    const ext = (this.wire as unknown as Record<string, { send?: (s: string) => void }>)[MOTD_EXTENSION]
    ext?.send?.(text)
  }

  onClose(fn: () => void): void {
    this.closeHandlers.push(fn)
  }

  destroy(): void {
    this.socket.destroy()
    this.finish()
  }

  private serve(piece: number, offset: number, length: number, respond: (err: Error | null, buf?: Uint8Array) => void): void {
    if (this.queued >= MAX_QUEUED) {
      this.log.event('error', { peer: this.remote, repo: this.seeder.gen.repo, reason: `more than ${MAX_QUEUED} requests queued` })
      this.destroy()
      return
    }
    this.queued++
    this.seeder.requests++
    // The upload limit holds the request before the disk read, so waiting blocks cost no memory.
    const wait = this.seeder.throttle(this, length)
    if (wait) void wait.then(() => this.read(piece, offset, length, respond))
    else this.read(piece, offset, length, respond)
  }

  private read(piece: number, offset: number, length: number, respond: (err: Error | null, buf?: Uint8Array) => void): void {
    if (this.closed) return
    this.seeder.reader.read(piece, offset, length).then(
      buf => {
        this.queued--
        if (!this.closed) respond(null, buf)
      },
      (err: Error) => {
        this.queued--
        if (this.closed) return
        if (err instanceof BadRequestError) {
          // Asking outside the torrent is a broken or hostile client.
          this.log.event('error', { peer: this.remote, repo: this.seeder.gen.repo, reason: err.message })
          this.destroy()
          return
        }
        if (err instanceof StaleFileError) this.seeder.staleRejects++
        else {
          this.log.event('error', { peer: this.remote, repo: this.seeder.gen.repo, reason: err.message })
        }
        respond(err) // BEP 6 reject_request when the peer has the fast extension
        if (!this.wire.hasFast) this.chokeForAWhile()
      },
    )
  }

  /** Without BEP 6 the only way to refuse a request is to choke, which drops all of them. */
  private chokeForAWhile(): void {
    if (this.unchokeTimer) return
    this.wire.choke()
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
    this.socket.destroy()
    this.wire.destroy()
    for (const fn of this.closeHandlers) fn()
  }
}
