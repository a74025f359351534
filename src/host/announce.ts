import { createSocket } from 'node:dgram'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { isIP } from 'node:net'
import { randomBytes } from 'node:crypto'
import bencode from 'bencode'

export interface AnnounceTarget {
  infoHash: string
  peerId: Buffer
  port: number
  /** Source address for announces: the tracker records the address it sees. */
  localAddress?: string
  uploaded(): number
}

const DEFAULT_INTERVAL_S = 1800
const RETRY_S = 60
const TIMEOUT_MS = 15_000

/**
 * Announces one repository as a seeder (left=0) to its trackers, from the address the host
 * listens on. bittorrent-tracker's Client is not used here: its HTTP and UDP requests go out
 * from the default address, so a host listening on 127.0.0.2 (or one address of a
 * multi-homed mirror) was registered under the wrong one. ws:// trackers (WebRTC) are skipped.
 */
export class Announcer {
  private timers: NodeJS.Timeout[] = []
  private stopped = false

  constructor(private readonly target: AnnounceTarget, private readonly trackers: string[], private readonly onResult: (tracker: string, result: string) => void) {}

  start(): void {
    for (const tr of this.trackers) {
      if (/^(https?|udp):/.test(tr)) this.schedule(tr, 0, 'started')
    }
  }

  async stop(): Promise<void> {
    this.stopped = true
    for (const t of this.timers) clearTimeout(t)
    this.timers = []
    await Promise.all(this.trackers.filter(tr => /^(https?|udp):/.test(tr)).map(tr => this.announce(tr, 'stopped').catch(() => 0)))
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

  private announceHttp(url: URL, event: string): Promise<number> {
    const t = this.target
    const q = [
      `info_hash=${escapeBytes(Buffer.from(t.infoHash, 'hex'))}`, `peer_id=${escapeBytes(t.peerId)}`,
      `port=${t.port}`, `uploaded=${t.uploaded()}`, 'downloaded=0', 'left=0', 'compact=1', 'numwant=0',
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
          if (size > 1 << 20) req.destroy(new Error('tracker reply too large'))
          else chunks.push(c)
        })
        res.on('end', () => {
          try {
            const reply = bencode.decode(Buffer.concat(chunks)) as Record<string, unknown>
            const failure = reply['failure reason']
            if (failure) return reject(new Error(Buffer.from(failure as Uint8Array).toString()))
            resolve(typeof reply.interval === 'number' ? reply.interval : DEFAULT_INTERVAL_S)
          } catch {
            reject(new Error(`HTTP ${res.statusCode}: not a tracker reply`))
          }
        })
      })
      req.on('timeout', () => req.destroy(new Error('timed out')))
      req.on('error', reject)
      req.end()
    })
  }

  /** BEP 15: connect, then announce, over one socket bound to the listen address. */
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
      const tx = randomBytes(4)
      sock.on('error', err => done(err))
      sock.on('message', (msg: Buffer) => {
        if (msg.length < 8 || !msg.subarray(4, 8).equals(tx)) return
        const action = msg.readUInt32BE(0)
        if (action === 3) return done(new Error(msg.subarray(8).toString()))
        if (action === 0 && msg.length >= 16) {
          const ann = Buffer.alloc(98)
          msg.copy(ann, 0, 8, 16)
          ann.writeUInt32BE(1, 8)
          tx.copy(ann, 12)
          Buffer.from(t.infoHash, 'hex').copy(ann, 16)
          t.peerId.copy(ann, 36)
          ann.writeBigUInt64BE(0n, 56)
          ann.writeBigUInt64BE(0n, 64)
          ann.writeBigUInt64BE(BigInt(t.uploaded()), 72)
          ann.writeUInt32BE(({ started: 2, stopped: 3, completed: 1 } as Record<string, number>)[event] ?? 0, 80)
          // IP field left 0: the socket is bound to the listen address, so the tracker sees the
          // right one, and bittorrent-tracker 11's UDP server mis-parses a non-zero field.
          randomBytes(4).copy(ann, 88)
          ann.writeInt32BE(0, 92) // numwant: a seeder needs no peers
          ann.writeUInt16BE(t.port, 96)
          sock.send(ann, port, host)
        } else if (action === 1 && msg.length >= 20) {
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
}

function escapeBytes(buf: Buffer): string {
  let out = ''
  for (const b of buf) {
    const c = String.fromCharCode(b)
    out += /[A-Za-z0-9.\-_~]/.test(c) ? c : '%' + b.toString(16).padStart(2, '0')
  }
  return out
}
