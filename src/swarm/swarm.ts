import { EventEmitter } from 'node:events'
import { formatAddress, PeerConnection, type PeerAddress } from './peer.js'
import { pexOf } from './pex.js'

export interface SwarmOptions {
  infoHash: string
  peerId: string
  maxConnections: number
  localAddress?: string
  /** Several local addresses (xync.conf ipadd=): dials take them in turn, so every uplink carries a share. */
  localAddresses?: string[]
  onMotd?: (peer: string, text: string) => void
}

const RETRY_DELAYS_MS = [1000, 3000]
/** Addresses learnt beyond this (peer exchange, DHT) are ignored: a hostile peer cannot grow the list without bound. */
const MAX_KNOWN = 1000

/**
 * The peers of one torrent: every address learnt (--peer, dtp:// host, tracker, magnet) is
 * dialled, up to `maxConnections` at once; a failed or lost one is tried again a couple of
 * times in a row, then given up with its reason kept for the final error message (a connection
 * that delivered a verified piece starts the count again).
 *
 * Events: 'peer' (PeerConnection) for each handshaken connection, 'lost' (label, reason).
 */
export class Swarm extends EventEmitter {
  readonly connected = new Set<PeerConnection>()
  readonly failures = new Map<string, string>()
  private readonly known = new Map<string, { addr: PeerAddress; attempts: number; state: 'idle' | 'dialing' | 'waiting' | 'up' | 'gone' }>()
  private dialing = 0
  private dials = 0
  private closed = false
  private readonly timers = new Set<NodeJS.Timeout>()
  /** Until then, peers may still arrive from a source being asked (a tracker). */
  private expectUntil = 0

  constructor(private readonly opts: SwarmOptions) {
    super()
  }

  add(addr: PeerAddress): void {
    const label = formatAddress(addr)
    if (this.closed || this.known.has(label) || this.known.size >= MAX_KNOWN) return
    this.known.set(label, { addr, attempts: 0, state: 'idle' })
    this.dialMore()
  }

  /** The addresses of the hosts connected now, but one: what we tell that one over ut_pex. */
  private hostsExcept(label: string): PeerAddress[] {
    return [...this.connected].filter(p => p.label !== label).map(p => p.opts.address)
  }

  /** Every address learnt so far, for messages. */
  tried(): string[] {
    return [...this.known.keys()]
  }

  /** Peers may still be announced until `ms` from now (trackers are being asked). */
  expectPeersFor(ms: number): void {
    this.expectUntil = Math.max(this.expectUntil, Date.now() + ms)
  }

  /** True while some address may still produce a connection. */
  hasProspects(): boolean {
    if (Date.now() < this.expectUntil && this.connected.size === 0) return true
    for (const k of this.known.values()) if (k.state !== 'gone') return true
    return false
  }

  close(): void {
    this.closed = true
    for (const t of this.timers) clearTimeout(t)
    for (const p of this.connected) p.close('sync finished')
  }

  private dialMore(): void {
    for (const [label, k] of this.known) {
      if (this.closed || this.connected.size + this.dialing >= this.opts.maxConnections) return
      if (k.state !== 'idle') continue
      k.state = 'dialing'
      k.attempts++
      this.dialing++
      PeerConnection.open({
        address: k.addr, infoHash: this.opts.infoHash, peerId: this.opts.peerId, localAddress: this.nextLocalAddress(),
        onMotd: this.opts.onMotd && (text => this.opts.onMotd!(label, text)),
        // Peer exchange: each host hears of the other hosts we reach, and names those it knows.
        pex: { known: () => this.hostsExcept(label), onPeers: peers => peers.forEach(p => this.add(p)) },
      }).then(peer => {
        this.dialing--
        if (this.closed) return peer.close('sync finished')
        // Cut off in the same read as its handshake (a flood announced at once): no close event is left to come.
        if (peer.closed) {
          this.emit('lost', label, peer.closeReason)
          return this.retry(label, peer.closeReason)
        }
        k.state = 'up'
        this.connected.add(peer)
        // The hosts already connected hear of this one now, not at their next minute.
        for (const other of this.connected) if (other !== peer) pexOf(other.wire)?.changed()
        peer.once('close', (reason: string) => {
          this.connected.delete(peer)
          // Attempts count failures in a row: a peer whose connections keep working (a restart,
          // a network blip now and then over a long pull) is not given up after its third, which
          // left a long pull "stalled" with every host gone. Only a verified piece counts as
          // working: blocks that never make a checked piece, or a connection that merely lived
          // long (held requests until our timeout), would let a hostile peer be redialled for
          // the whole pull instead of three times.
          if (peer.piecesVerified > 0) k.attempts = 0
          this.emit('lost', label, reason)
          this.retry(label, reason)
        })
        this.emit('peer', peer)
      }, (err: Error) => {
        this.dialing--
        this.retry(label, err.message)
      })
    }
  }

  private nextLocalAddress(): string | undefined {
    const list = this.opts.localAddresses
    if (!list || list.length === 0) return this.opts.localAddress
    return list[this.dials++ % list.length]
  }

  private retry(label: string, reason: string): void {
    const k = this.known.get(label)!
    this.failures.set(label, reason)
    // A peer that cheated is not dialled again; others get a couple more chances.
    if (this.closed || k.attempts > RETRY_DELAYS_MS.length || /hash check|more data|another torrent/.test(reason)) {
      k.state = 'gone'
      this.emit('gone', label)
      this.dialMore()
      return
    }
    k.state = 'waiting'
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      k.state = 'idle'
      this.dialMore()
    }, RETRY_DELAYS_MS[Math.max(0, k.attempts - 1)])
    timer.unref()
    this.timers.add(timer)
    this.dialMore()
  }
}
