import { createSocket } from 'node:dgram'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { isIP } from 'node:net'
import { randomBytes } from 'node:crypto'
import bencode from 'bencode'

/** A peer named by a tracker (the same shape as the client's PeerAddress; shared/ imports no feature). */
export interface PeerAddress {
  host: string
  port: number
}

export interface AnnounceTarget {
  infoHash: string
  peerId: Buffer
  port: number
  /** Source address for announces: the tracker records (and may only allow) the address it sees. */
  localAddress?: string
  uploaded(): number
  /** Bytes still wanted; 0 (the default) announces a seeder. */
  left?: number
  /** Peers asked for; 0 (the default): a seeder needs none. */
  numwant?: number
  /** Peers named in a reply (a leecher's reason to announce). */
  onPeers?(peers: PeerAddress[]): void
  /**
   * The `stopped` announce must not keep the process alive: a client's pull is over and its
   * exit should not wait out a silent tracker's timeout. The host awaits its stop instead.
   */
  detachStop?: boolean
}

const DEFAULT_INTERVAL_S = 1800
const RETRY_S = 60
const TIMEOUT_MS = 15_000
/** A tracker reply larger than this is refused: no sane peer list needs more. */
const MAX_REPLY_BYTES = 1 << 20

/**
 * Announces one torrent to its trackers from a chosen source address: the host as a seeder
 * from the address it listens on, the client as a leecher from `--bind`. bittorrent-tracker's
 * Client is not used: its HTTP (fetch) and UDP requests go out from the default address, so a
 * host listening on 127.0.0.2 was registered under the wrong one, and a client whose tracker
 * allows only its `--bind` address was refused. ws:// trackers (WebRTC) are skipped.
 */
export class Announcer {
  private timers: NodeJS.Timeout[] = []
  private stopped = false

  constructor(private readonly target: AnnounceTarget, private readonly trackers: string[], private readonly onResult: (tracker: string, result: string) => void) {}

  start(): void {
    for (const tr of this.usable()) this.schedule(tr, 0, 'started')
  }

  async stop(): Promise<void> {
    this.stopped = true
    for (const t of this.timers) clearTimeout(t)
    this.timers = []
    await Promise.all(this.usable().map(tr => this.announce(tr, 'stopped').catch(() => 0)))
  }

  private usable(): string[] {
    return this.trackers.filter(tr => /^(https?|udp):/.test(tr))
  }

  private schedule(tracker: string, delayS: number, event: string): void {
    const timer = setTimeout(async () => {
      if (this.stopped) return
      let next = RETRY_S
      try {
        next = await this.announce(tracker, event)
        this.onResult(tracker, 'ok')
      } catch (err) {
        this.onResult(tracker, (err as Error).message)
      }
      if (!this.stopped) this.schedule(tracker, next, event === 'started' ? '' : event)
    }, delayS * 1000)
    timer.unref()
    this.timers.push(timer)
  }

  /** One announce; resolves with the interval (seconds) the tracker asks for. */
  private announce(tracker: string, event: string): Promise<number> {
    return tracker.startsWith('udp:') ? this.announceUdp(new URL(tracker), event) : this.announceHttp(new URL(tracker), event)
  }

  private detach(event: string): boolean {
    return event === 'stopped' && this.target.detachStop === true
  }

  private announceHttp(url: URL, event: string): Promise<number> {
    const t = this.target
    const q = [
      `info_hash=${escapeBytes(Buffer.from(t.infoHash, 'hex'))}`, `peer_id=${escapeBytes(t.peerId)}`,
      `port=${t.port}`, `uploaded=${t.uploaded()}`, 'downloaded=0', `left=${t.left ?? 0}`, 'compact=1', `numwant=${t.numwant ?? 0}`,
    ]
    if (event) q.push(`event=${event}`)
    if (t.localAddress) q.push(`ip=${encodeURIComponent(t.localAddress)}`)
    const path = `${url.pathname}${url.search ? url.search + '&' : '?'}${q.join('&')}`
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest
    return new Promise((resolve, reject) => {
      const req = request({ host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port || undefined, path, localAddress: t.localAddress, timeout: TIMEOUT_MS }, res => {
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (c: Buffer) => {
          size += c.length
          if (size > MAX_REPLY_BYTES) req.destroy(new Error('tracker reply too large'))
          else chunks.push(c)
        })
        res.on('end', () => {
          try {
            resolve(this.onHttpReply(bencode.decode(Buffer.concat(chunks)) as Record<string, unknown>))
          } catch (err) {
            reject(err instanceof TrackerFailure ? err : new Error(`HTTP ${res.statusCode}: not a tracker reply`))
          }
        })
      })
      if (this.detach(event)) req.on('socket', s => s.unref())
      req.on('timeout', () => req.destroy(new Error('timed out')))
      req.on('error', reject)
      req.end()
    })
  }

  /** Hands the reply's peers on; returns the interval. Throws TrackerFailure on a refusal. */
  private onHttpReply(reply: Record<string, unknown>): number {
    const failure = reply['failure reason']
    if (failure) throw new TrackerFailure(Buffer.from(failure as Uint8Array).toString())
    if (this.target.onPeers) {
      const peers = [...parsePeerField(reply.peers, 4), ...parsePeerField(reply.peers6, 6)]
      if (peers.length > 0) this.target.onPeers(peers)
    }
    return typeof reply.interval === 'number' ? reply.interval : DEFAULT_INTERVAL_S
  }

  /** BEP 15: connect, then announce, over one socket bound to the source address. */
  private announceUdp(url: URL, event: string): Promise<number> {
    const t = this.target
    const host = url.hostname.replace(/^\[|\]$/g, '')
    const family = isIP(host) === 6 || (t.localAddress && isIP(t.localAddress) === 6) ? 'udp6' : 'udp4'
    const sock = createSocket(family)
    const port = Number(url.port)
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error('timed out')), TIMEOUT_MS)
      const done = (err: Error | null, interval = DEFAULT_INTERVAL_S) => {
        clearTimeout(timer)
        sock.close()
        if (err) reject(err)
        else resolve(interval)
      }
      if (this.detach(event)) {
        timer.unref()
        sock.unref()
      }
      const tx = randomBytes(4)
      sock.on('error', err => done(err))
      sock.on('message', (msg: Buffer) => {
        if (msg.length < 8 || !msg.subarray(4, 8).equals(tx)) return
        const action = msg.readUInt32BE(0)
        if (action === 3) return done(new Error(msg.subarray(8).toString()))
        if (action === 0 && msg.length >= 16) {
          sock.send(this.udpAnnouncePacket(msg.subarray(8, 16), tx, event), port, host)
        } else if (action === 1 && msg.length >= 20) {
          const peers = parseCompactPeers(msg.subarray(20), family === 'udp6' ? 6 : 4)
          if (peers.length > 0) t.onPeers?.(peers)
          done(null, msg.readUInt32BE(8))
        }
      })
      sock.bind({ address: t.localAddress, port: 0 }, () => {
        const conn = Buffer.alloc(16)
        conn.writeBigUInt64BE(0x41727101980n, 0)
        conn.writeUInt32BE(0, 8)
        tx.copy(conn, 12)
        sock.send(conn, port, host)
      })
    })
  }

  private udpAnnouncePacket(connectionId: Buffer, tx: Buffer, event: string): Buffer {
    const t = this.target
    const ann = Buffer.alloc(98)
    connectionId.copy(ann, 0)
    ann.writeUInt32BE(1, 8)
    tx.copy(ann, 12)
    Buffer.from(t.infoHash, 'hex').copy(ann, 16)
    t.peerId.copy(ann, 36)
    ann.writeBigUInt64BE(0n, 56)
    ann.writeBigUInt64BE(BigInt(t.left ?? 0), 64)
    ann.writeBigUInt64BE(BigInt(t.uploaded()), 72)
    ann.writeUInt32BE(({ started: 2, stopped: 3, completed: 1 } as Record<string, number>)[event] ?? 0, 80)
    // IP field left 0: the socket is bound to the source address, so the tracker sees the
    // right one, and bittorrent-tracker 11's UDP server mis-parses a non-zero field.
    randomBytes(4).copy(ann, 88)
    ann.writeInt32BE(t.numwant ?? 0, 92)
    ann.writeUInt16BE(t.port, 96)
    return ann
  }
}

/** A tracker's own refusal (`failure reason`), reported as the tracker worded it. */
class TrackerFailure extends Error {}

/** `peers`/`peers6` of an HTTP reply: compact bytes (BEP 23 / BEP 7) or a list of dicts. */
function parsePeerField(field: unknown, family: 4 | 6): PeerAddress[] {
  if (field instanceof Uint8Array) return parseCompactPeers(Buffer.from(field.buffer, field.byteOffset, field.byteLength), family)
  if (!Array.isArray(field)) return []
  const peers: PeerAddress[] = []
  for (const entry of field as unknown[]) {
    if (typeof entry !== 'object' || entry === null) continue
    const { ip, port } = entry as { ip?: unknown; port?: unknown }
    const host = ip instanceof Uint8Array ? Buffer.from(ip).toString() : undefined
    if (host && isIP(host) && typeof port === 'number' && Number.isInteger(port) && port > 0 && port < 65536) peers.push({ host, port })
  }
  return peers
}

/** Packed address+port entries: 6 bytes each for IPv4, 18 for IPv6; a ragged tail is ignored. */
function parseCompactPeers(buf: Buffer, family: 4 | 6): PeerAddress[] {
  const size = family === 4 ? 6 : 18
  const peers: PeerAddress[] = []
  for (let i = 0; i + size <= buf.length; i += size) {
    const port = buf.readUInt16BE(i + size - 2)
    if (port === 0) continue
    const host = family === 4 ? [...buf.subarray(i, i + 4)].join('.') : ipv6Text(buf.subarray(i, i + 16))
    peers.push({ host, port })
  }
  return peers
}

function ipv6Text(b: Buffer): string {
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16))
  // Node's own formatter gives the canonical (compressed) form the rest of dsync compares with.
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1)
}

function escapeBytes(buf: Buffer): string {
  let out = ''
  for (const b of buf) {
    const c = String.fromCharCode(b)
    out += /[A-Za-z0-9.\-_~]/.test(c) ? c : '%' + b.toString(16).padStart(2, '0')
  }
  return out
}
