import type { Socket } from 'node:net'
import type { HostLimits } from './limits.js'

interface Watched {
  address: string
  /** Absolute time by which the current head (HTTP request head, handshake) must be in; 0: none. */
  deadline: number
  /** Close after this long without a byte received; 0: not watched. */
  idleMs: number
  lastData: number
  /** When a peer-wire message still incomplete started (0: none); it must finish within the header timeout. */
  partialSince: () => number
}

const NEVER = () => 0
/** How long an address dropped for breaking the rules is refused. */
const PENALTY_MS = 30_000

/**
 * Time and descriptor limits for every connection the DTP port accepts, HTTP and peer wire
 * alike: a cap on connections per address (one address cannot hold the host's descriptors),
 * a deadline for the request head or handshake that trickling bytes does not extend, and an
 * idle timeout on received bytes. Node's own HTTP timeouts (headersTimeout, requestTimeout)
 * are checked by a timer that only `server.listen()` starts, and our HTTP server never
 * listens itself (the listener hands it sockets), so they never ran: 2,000 half-sent request
 * lines stayed open for minutes. One sweep a second checks them all.
 */
export class ConnectionWatch {
  private readonly conns = new Map<Socket, Watched>()
  private readonly perAddress = new Map<string, number>()
  private timer: NodeJS.Timeout | undefined
  /** Addresses dropped for breaking the rules -> until when they are refused. */
  private readonly penalty = new Map<string, number>()

  constructor(private limits: HostLimits, private readonly onClose: (address: string, reason: string) => void) {}

  setLimits(limits: HostLimits): void {
    this.limits = limits
  }

  /**
   * A peer dropped for breaking the rules (oversized message, requests it never reads) would
   * come straight back and cost the host the same again: its address is refused for a while.
   */
  penalize(address: string): void {
    if (this.penalty.size >= 10_000) this.penalty.clear()
    this.penalty.set(address, Date.now() + PENALTY_MS)
  }

  /** Counts a new connection; undefined when admitted, else why not (not counted then). */
  admit(socket: Socket): string | undefined {
    const address = socket.remoteAddress ?? ''
    const until = this.penalty.get(address)
    if (until !== undefined) {
      if (Date.now() < until) return 'dropped for breaking the protocol a moment ago'
      this.penalty.delete(address)
    }
    const n = this.perAddress.get(address) ?? 0
    if (n >= this.limits.connectionsPerAddress) return 'too many connections from this address'
    this.perAddress.set(address, n + 1)
    const w: Watched = { address, deadline: Date.now() + this.limits.headerTimeoutMs, idleMs: 0, lastData: Date.now(), partialSince: NEVER }
    this.conns.set(socket, w)
    socket.on('data', () => (w.lastData = Date.now()))
    socket.once('close', () => this.forget(socket))
    this.timer ??= setInterval(() => this.sweep(), 1000).unref()
    return undefined
  }

  /** The next head (HTTP request, handshake) must be complete within the header timeout. */
  expectHead(socket: Socket): void {
    const w = this.conns.get(socket)
    if (w) w.deadline = Date.now() + this.limits.headerTimeoutMs
  }

  /** The head arrived. */
  headDone(socket: Socket): void {
    const w = this.conns.get(socket)
    if (w) w.deadline = 0
  }

  /** From now on close the connection after the idle timeout without a byte received. */
  watchIdle(socket: Socket, partialSince: () => number = NEVER): void {
    const w = this.conns.get(socket)
    if (!w) return
    w.idleMs = this.limits.idleTimeoutMs
    w.lastData = Date.now()
    w.partialSince = partialSince
  }

  get size(): number {
    return this.conns.size
  }

  private sweep(): void {
    const now = Date.now()
    for (const [socket, w] of this.conns) {
      const started = w.partialSince()
      const reason = w.deadline !== 0 && now > w.deadline ? `request head or handshake not complete after ${this.limits.headerTimeoutMs / 1000} s`
        : w.idleMs !== 0 && now - w.lastData > w.idleMs ? `nothing received for ${w.idleMs / 1000} s`
          : started !== 0 && now - started > this.limits.headerTimeoutMs ? `a message still incomplete after ${this.limits.headerTimeoutMs / 1000} s`
            : undefined
      if (reason) {
        this.forget(socket)
        socket.destroy()
        this.onClose(w.address, reason)
      }
    }
    if (this.conns.size === 0) {
      clearInterval(this.timer)
      this.timer = undefined
    }
  }

  private forget(socket: Socket): void {
    const w = this.conns.get(socket)
    if (!w) return
    this.conns.delete(socket)
    const n = (this.perAddress.get(w.address) ?? 1) - 1
    if (n <= 0) this.perAddress.delete(w.address)
    else this.perAddress.set(w.address, n)
  }

  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }
}
