import { isIP } from 'node:net'
import bencode from 'bencode'
import type { Wire, WireExtension, WireExtensionClass } from 'bittorrent-protocol'
import type { PeerAddress } from './address.js'

export const UT_PEX = 'ut_pex'
/** BEP 11: at most 50 added peers per message; more than that from a peer is ignored. */
const MAX_ADDED = 50
/** BEP 11: a message a minute per connection; the timer checks for changes this often. */
const RESEND_MS = 60_000
/**
 * Messages a connection may send in any minute, the first and the updates pushed by
 * `changed()` together: a swarm being set up connects its hosts within a second or two,
 * and a host told the list before the others answered would otherwise hear of them a
 * minute later (after a short pull, never). libtorrent drops a peer for more than six a minute.
 */
const MAX_PER_MINUTE = 3
/** added.f flags: 0x02 seed (upload only), 0x10 reachable (accepts incoming connections). */
const FLAG_SEED_REACHABLE = 0x02 | 0x10

/**
 * BEP 11 peer exchange, both directions, for host and client (one class per connection, so
 * `known` can leave out the peer itself): tells the other side the
 * addresses in `known()` (hosts that accept connections) once its extended handshake shows
 * ut_pex, then again when the list changed (`changed()`, or the minute's check), at most
 * MAX_PER_MINUTE times in any minute; hands what the other
 * side tells us to `onPeers`, capped and with nonsense (port 0, unspecified or multicast
 * addresses) dropped. Only IP addresses travel (compact form); host names stay in the
 * HTTP info.
 */
export function pexExtension(known: () => PeerAddress[], onPeers: (peers: PeerAddress[]) => void): WireExtensionClass {
  class UtPex implements WireExtension, PexChanged {
    private supported = false
    private lastSent = ''
    private sentAt: number[] = []
    private timer: NodeJS.Timeout | undefined

    constructor(private readonly wire: Wire) {
      wire.once('close', () => clearInterval(this.timer))
    }

    onExtendedHandshake(h: { m?: Record<string, unknown> }): void {
      if (!h.m || typeof h.m[UT_PEX] !== 'number' || this.supported) return
      this.supported = true
      this.send()
      this.timer = setInterval(() => this.send(), RESEND_MS)
      this.timer.unref()
    }

    onMessage(buf: Uint8Array): void {
      const peers = decodePex(buf)
      if (peers.length > 0) onPeers(peers)
    }

    changed(): void {
      if (this.supported) this.send()
    }

    private send(): void {
      if ((this.wire as unknown as { destroyed?: boolean }).destroyed) return clearInterval(this.timer)
      const list = known().filter(p => isIP(p.host) !== 0).slice(0, MAX_ADDED)
      const key = list.map(p => `${p.host}:${p.port}`).sort().join(',')
      if (key === this.lastSent) return
      const now = Date.now()
      this.sentAt = this.sentAt.filter(t => now - t < RESEND_MS)
      if (this.sentAt.length >= MAX_PER_MINUTE) return // the minute's check sends it
      this.sentAt.push(now)
      this.lastSent = key
      this.wire.extended(UT_PEX, encodePex(list))
    }
  }
  ;(UtPex.prototype as WireExtension).name = UT_PEX
  return UtPex
}

/** What a connection's ut_pex extension offers its owner: the list `known()` returns may have changed. */
export interface PexChanged {
  changed(): void
}

/** The ut_pex extension `pexExtension` put on `wire`, if any. */
export function pexOf(wire: Wire): PexChanged | undefined {
  return (wire as unknown as Record<string, PexChanged | undefined>)[UT_PEX]
}

export function encodePex(peers: PeerAddress[]): Uint8Array {
  const v4 = peers.filter(p => isIP(p.host) === 4)
  const v6 = peers.filter(p => isIP(p.host) === 6 && !p.host.includes('.'))
  return bencode.encode({
    added: Buffer.concat(v4.map(compactV4)), 'added.f': Buffer.alloc(v4.length, FLAG_SEED_REACHABLE),
    added6: Buffer.concat(v6.map(compactV6)), 'added6.f': Buffer.alloc(v6.length, FLAG_SEED_REACHABLE),
    dropped: Buffer.alloc(0),
  })
}

/** The `added` and `added6` peers of a ut_pex message; a malformed one yields none. */
export function decodePex(buf: Uint8Array): PeerAddress[] {
  let msg: { added?: unknown; added6?: unknown }
  try {
    msg = bencode.decode(buf) as typeof msg
  } catch {
    return []
  }
  if (!msg || typeof msg !== 'object') return []
  const out: PeerAddress[] = []
  if (msg.added instanceof Uint8Array) out.push(...fromCompact(Buffer.from(msg.added), 6))
  if (msg.added6 instanceof Uint8Array) out.push(...fromCompact(Buffer.from(msg.added6), 18))
  return out.filter(usable).slice(0, MAX_ADDED)
}

function fromCompact(buf: Buffer, size: 6 | 18): PeerAddress[] {
  const out: PeerAddress[] = []
  for (let i = 0; i + size <= buf.length && out.length < MAX_ADDED; i += size) {
    const ip = size === 6 ? [...buf.subarray(i, i + 4)].join('.') : v6Text(buf.subarray(i, i + 16))
    out.push({ host: ip, port: buf.readUInt16BE(i + size - 2) })
  }
  return out
}

function v6Text(b: Buffer): string {
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16))
  return groups.join(':')
}

function compactV4(p: PeerAddress): Buffer {
  const b = Buffer.alloc(6)
  p.host.split('.').forEach((x, i) => (b[i] = Number(x)))
  b.writeUInt16BE(p.port, 4)
  return b
}

function compactV6(p: PeerAddress): Buffer {
  const b = Buffer.alloc(18)
  const [head, tail = ''] = p.host.split('::')
  const hs = head === '' ? [] : head.split(':')
  const ts = tail === '' ? [] : tail.split(':')
  const groups = p.host.includes('::') ? [...hs, ...Array(8 - hs.length - ts.length).fill('0'), ...ts] : hs
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16) || 0, i * 2))
  b.writeUInt16BE(p.port, 16)
  return b
}

/** No port 0, no 0.0.0.0/::, no multicast or broadcast: nothing a peer could be at. */
export function usable(p: PeerAddress): boolean {
  if (!Number.isInteger(p.port) || p.port <= 0 || p.port > 65535) return false
  if (isIP(p.host) === 4) {
    const first = Number(p.host.split('.')[0])
    return first !== 0 && first < 224 && p.host !== '255.255.255.255'
  }
  if (isIP(p.host) === 6) return !/^(0:){7}0$|^::$/.test(p.host) && !/^ff/i.test(p.host)
  return false
}
