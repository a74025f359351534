import { execFile, execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import bencode from 'bencode'
import Wire from 'bittorrent-protocol'

const LT_SCRIPT = fileURLToPath(new URL('../../testbed/lt_leecher.py', import.meta.url))
/** Debian's python3-libtorrent imports only under the system python, not a pyenv one on PATH. */
const SYSTEM_PYTHON = '/usr/bin/python3'

let ltChecked: string | undefined | null = null
/** undefined when libtorrent is usable, else why not (the test skips with that message). */
export function libtorrentMissing(): string | undefined {
  if (ltChecked !== null) return ltChecked
  try {
    execFileSync(SYSTEM_PYTHON, ['-c', 'import libtorrent'], { stdio: 'ignore' })
    ltChecked = undefined
  } catch {
    ltChecked = `${SYSTEM_PYTHON} cannot import libtorrent (apt install python3-libtorrent)`
  }
  return ltChecked
}

export interface LtResult {
  ok: boolean
  progress: number
  state: string
  bytes: number
  hasMetadata: boolean
  error: string | null
}

/** Downloads with libtorrent from the named peers only (no DHT/LSD/trackers/uTP), from `bind`. */
export function libtorrentLeech(args: { torrent?: string; magnet?: string; save: string; peers: string[]; bind: string; timeout: number }): Promise<LtResult> {
  return new Promise((resolve, reject) => {
    execFile(SYSTEM_PYTHON, [LT_SCRIPT, JSON.stringify(args)], { timeout: (args.timeout + 30) * 1000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`libtorrent leecher failed: ${err.message} ${stderr}`))
      try {
        resolve(JSON.parse(stdout.trim().split('\n').pop()!) as LtResult)
      } catch {
        reject(new Error(`libtorrent leecher printed no result: ${stdout} ${stderr}`))
      }
    })
  })
}

/** Connects from a chosen loopback source, sends `payload`, and counts what comes back until close. */
export function rawExchange(host: string, port: number, localAddress: string, payload: Buffer | string, waitMs = 3000): Promise<{ bytes: number; error?: string; closed: boolean }> {
  return new Promise(resolve => {
    const sock = connect({ host, port, localAddress })
    let bytes = 0
    let error: string | undefined
    const timer = setTimeout(() => {
      sock.destroy()
      resolve({ bytes, error, closed: false })
    }, waitMs)
    sock.on('connect', () => sock.write(payload))
    sock.on('data', d => (bytes += d.length))
    sock.on('error', e => (error = (e as NodeJS.ErrnoException).code ?? e.message))
    sock.on('close', () => {
      clearTimeout(timer)
      resolve({ bytes, error, closed: true })
    })
  })
}

/** A peer-wire message: length prefix, id, then 4-byte numbers (a request is wireMessage(6, piece, offset, length)). */
export function wireMessage(id: number, ...numbers: number[]): Buffer {
  const b = Buffer.alloc(5 + 4 * numbers.length)
  b.writeUInt32BE(1 + 4 * numbers.length, 0)
  b[4] = id
  numbers.forEach((n, i) => b.writeUInt32BE(n, 5 + 4 * i))
  return b
}

/** A BitTorrent handshake naming `infoHash`, as a leecher sends it first. */
export function handshakeBytes(infoHash: string): Buffer {
  const reserved = Buffer.alloc(8)
  reserved[5] |= 0x10
  return Buffer.concat([Buffer.from('\x13BitTorrent protocol', 'latin1'), reserved, Buffer.from(infoHash, 'hex'), randomBytes(20)])
}

/**
 * A minimal DTP user over the real peer wire (bittorrent-protocol's Wire, the library
 * webtorrent speaks with): handshakes with the fast and extension bits, announces our
 * `dsync_motd` extension, records every motd the host sends, and can request blocks.
 */
export class WireLeecher {
  readonly wire = new Wire('tcpOutgoing')
  readonly motds: string[] = []
  readonly socket: Socket
  handshaken: Promise<void>
  closed: Promise<void>
  haveAll = false
  rejects = 0

  constructor(host: string, port: number, localAddress: string, infoHash: string) {
    this.socket = connect({ host, port, localAddress })
    const wire = this.wire
    const motds = this.motds
    class Motd {
      constructor(readonly w: unknown) {}
      onMessage(buf: Uint8Array): void {
        const msg = bencode.decode(buf) as { motd?: Uint8Array }
        if (msg.motd) motds.push(Buffer.from(msg.motd).toString('utf8'))
      }
    }
    ;(Motd.prototype as { name?: string }).name = 'dsync_motd'
    wire.use(Motd)
    this.socket.pipe(wire).pipe(this.socket)
    this.socket.on('error', () => undefined)
    this.handshaken = new Promise((resolve, reject) => {
      wire.once('handshake', () => resolve())
      this.socket.once('close', () => reject(new Error('closed before handshake')))
    })
    this.handshaken.catch(() => undefined)
    this.closed = new Promise(resolve => this.socket.once('close', () => resolve()))
    wire.on('have-all', () => (this.haveAll = true))
    wire.on('reject', () => this.rejects++)
    wire.handshake(infoHash, randomBytes(20), { dht: false, fast: true })
    wire.interested()
  }

  async waitUnchoked(timeoutMs = 10_000): Promise<void> {
    await this.handshaken
    if (!this.wire.peerChoking) return
    await withTimeout(new Promise<void>(resolve => this.wire.once('unchoke', () => resolve())), timeoutMs, 'unchoke')
  }

  /** One block; rejects with the wire's reason (e.g. "request was rejected"), or after `timeoutMs`. */
  request(piece: number, offset: number, length: number, timeoutMs = 15_000): Promise<Buffer> {
    const block = new Promise<Buffer>((resolve, reject) => this.wire.request(piece, offset, length, (err, buf) => (err ? reject(err) : resolve(Buffer.from(buf!)))))
    return withTimeout(block, timeoutMs, `block ${piece}+${offset}`)
  }

  async waitMotd(count: number, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs
    while (this.motds.length < count) {
      if (Date.now() > deadline) throw new Error(`no motd #${count} within ${timeoutMs} ms (got ${JSON.stringify(this.motds)})`)
      await new Promise(r => setTimeout(r, 50))
    }
    return this.motds[count - 1]
  }

  close(): void {
    this.socket.destroy()
  }
}

/** `p`, or a rejection naming `what` after `ms`: no test waits without a bound. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)))
  return Promise.race([p, limit]).finally(() => clearTimeout(timer))
}
