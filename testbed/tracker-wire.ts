import WebSocket from 'ws'
import { spawn, type ChildProcess } from 'node:child_process'
import { createSocket, type Socket } from 'node:dgram'
import { request } from 'node:http'
import { after } from 'node:test'
import { CLI } from './cli.js'

/** A `dsync tracker --json` process; `port` comes from its "listening" line. */
export interface TrackerProcess {
  child: ChildProcess
  port: number
  host: string
  /** Every JSON event line printed so far. */
  events: Record<string, unknown>[]
  stderr: () => string
  waitFor(pred: (e: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>
  stop(): Promise<number>
}

export async function startTrackerProcess(host: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<TrackerProcess> {
  const child = spawn(process.execPath, [CLI, '--json', 'tracker', '--listen', host, '--port', '0', ...args], {
    env: { ...process.env, LANG: 'C.UTF-8', LC_ALL: '', DSYNC_LANG: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const events: Record<string, unknown>[] = []
  const waiters: (() => void)[] = []
  let stderr = ''
  let buf = ''
  let exited = false
  child.stdout!.on('data', d => {
    buf += d
    let nl
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl)
      buf = buf.slice(nl + 1)
      try { events.push(JSON.parse(line)) } catch { /* not an event */ }
    }
    for (const w of waiters.splice(0)) w()
  })
  child.stderr!.on('data', d => (stderr += d))
  const exit = new Promise<number>(resolve => child.on('exit', code => {
    exited = true
    for (const w of waiters.splice(0)) w()
    resolve(code ?? -1)
  }))
  const waitFor = (pred: (e: Record<string, unknown>) => boolean, timeoutMs = 20_000): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching tracker event in ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs)
      const check = (): void => {
        const found = events.find(pred)
        if (found) {
          clearTimeout(timer)
          resolve(found)
        } else if (exited) {
          clearTimeout(timer)
          reject(new Error(`tracker exited; stderr: ${stderr}`))
        } else waiters.push(check)
      }
      check()
    })
  const stop = async (): Promise<number> => {
    if (!exited) child.kill('SIGTERM')
    return exit
  }
  // Not after(): called from a before() hook, that would run as soon as the hook ends.
  process.once('exit', () => { if (!exited) child.kill('SIGKILL') })
  const listening = await waitFor(e => e.event === 'listening')
  return { child, port: listening.port as number, host, events, stderr: () => stderr, waitFor, stop }
}

// ---- UDP (BEP 15), built by hand so tests can also send what a real client never would

export const PROTOCOL_ID = Buffer.from('0000041727101980', 'hex')

export async function udpSocket(localAddress: string): Promise<Socket> {
  const s = createSocket('udp4')
  await new Promise<void>(resolve => s.bind(0, localAddress, () => resolve()))
  after(() => { try { s.close() } catch { /* closed */ } })
  return s
}

/** Sends one packet and waits for the reply with the same transaction id; null on timeout. */
export function udpRequest(s: Socket, host: string, port: number, packet: Buffer, timeoutMs = 1500): Promise<Buffer | null> {
  const tx = packet.readUInt32BE(12)
  return new Promise(resolve => {
    const onMessage = (msg: Buffer): void => {
      if (msg.length >= 8 && msg.readUInt32BE(4) === tx) {
        cleanup()
        resolve(msg)
      }
    }
    const timer = setTimeout(() => { cleanup(); resolve(null) }, timeoutMs)
    const cleanup = (): void => {
      clearTimeout(timer)
      s.off('message', onMessage)
    }
    s.on('message', onMessage)
    s.send(packet, port, host)
  })
}

let nextTx = 1
export function txId(): number {
  return (nextTx++ * 2654435761) >>> 0
}

export function connectPacket(): Buffer {
  const b = Buffer.alloc(16)
  PROTOCOL_ID.copy(b, 0)
  b.writeUInt32BE(0, 8)
  b.writeUInt32BE(txId(), 12)
  return b
}

export async function udpConnect(s: Socket, host: string, port: number): Promise<Buffer> {
  const reply = await udpRequest(s, host, port, connectPacket())
  if (!reply || reply.readUInt32BE(0) !== 0) throw new Error('no connect reply')
  return reply.subarray(8, 16)
}

export interface UdpAnnounce {
  connectionId: Buffer
  infoHash: string
  peerId?: Buffer
  port: number
  left?: number
  event?: 0 | 1 | 2 | 3
  ip?: string
  numwant?: number
  /** BEP 41 URL data, e.g. "/KEY/announce". */
  urlData?: string
}

export function announcePacket(a: UdpAnnounce): Buffer {
  const url = a.urlData ? Buffer.from(a.urlData) : null
  const b = Buffer.alloc(98 + (url ? 2 + url.length + 1 : 0))
  a.connectionId.copy(b, 0)
  b.writeUInt32BE(1, 8)
  b.writeUInt32BE(txId(), 12)
  Buffer.from(a.infoHash, 'hex').copy(b, 16)
  ;(a.peerId ?? Buffer.from('-XX0001-' + 'p'.repeat(12))).copy(b, 36)
  b.writeBigUInt64BE(BigInt(a.left ?? 1000), 64)
  b.writeUInt32BE(a.event ?? 2, 80)
  if (a.ip) a.ip.split('.').forEach((o, i) => (b[84 + i] = Number(o)))
  b.writeUInt32BE(0x1234, 88)
  b.writeInt32BE(a.numwant ?? 50, 92)
  b.writeUInt16BE(a.port, 96)
  if (url) {
    b[98] = 2
    b[99] = url.length
    url.copy(b, 100)
    b[100 + url.length] = 0
  }
  return b
}

export function scrapePacket(connectionId: Buffer, infoHashes: string[]): Buffer {
  const b = Buffer.alloc(16 + 20 * infoHashes.length)
  connectionId.copy(b, 0)
  b.writeUInt32BE(2, 8)
  b.writeUInt32BE(txId(), 12)
  infoHashes.forEach((h, i) => Buffer.from(h, 'hex').copy(b, 16 + 20 * i))
  return b
}

export interface UdpAnnounceReply {
  action: number
  interval: number
  leechers: number
  seeders: number
  peers: string[]
  error?: string
}

export function parseAnnounceReply(b: Buffer): UdpAnnounceReply {
  const action = b.readUInt32BE(0)
  if (action === 3) return { action, interval: 0, leechers: 0, seeders: 0, peers: [], error: b.toString('utf8', 8) }
  const peers: string[] = []
  for (let off = 20; off + 6 <= b.length; off += 6) peers.push(`${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}:${b.readUInt16BE(off + 4)}`)
  return { action, interval: b.readUInt32BE(8), leechers: b.readUInt32BE(12), seeders: b.readUInt32BE(16), peers }
}

// ---- HTTP

export interface HttpReply {
  status: number
  body: Buffer
  headers: Record<string, string | string[] | undefined>
}

/** GET from a chosen local address; rejects when the tracker drops the connection. */
export function httpGet(url: string, localAddress?: string, headers: Record<string, string> = {}): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { localAddress, headers, agent: false, timeout: 10_000 }, res => {
      const chunks: Buffer[] = []
      res.on('data', c => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end()
  })
}

/** `%xx` for every byte, as BitTorrent clients encode info_hash and peer_id. */
export function escapeBytes(b: Buffer): string {
  return [...b].map(x => '%' + x.toString(16).padStart(2, '0')).join('')
}

export function announceQuery(infoHash: string, port: number, extra: Record<string, string> = {}, peerId = Buffer.from('-XX0001-' + 'h'.repeat(12))): string {
  const q = [`info_hash=${escapeBytes(Buffer.from(infoHash, 'hex'))}`, `peer_id=${escapeBytes(peerId)}`, `port=${port}`,
    'uploaded=0', 'downloaded=0', 'left=1000', 'compact=1', ...Object.entries(extra).map(([k, v]) => `${k}=${v}`)]
  return q.join('&')
}

export function compactPeers(b: Uint8Array | undefined): string[] {
  const out: string[] = []
  if (!b) return out
  for (let off = 0; off + 6 <= b.length; off += 6) out.push(`${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}:${(b[off + 4] << 8) | b[off + 5]}`)
  return out
}

/** A WebSocket to the tracker, closed when the test file ends. */
export function wsOpen(url: string, localAddress?: string, handshakeTimeout = 10_000): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { localAddress, handshakeTimeout })
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
    after(() => ws.terminate())
  })
}

/** Sends one JSON message and resolves with the next reply. */
export function wsRequest(ws: WebSocket, message: object): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no ws reply')), 10_000)
    ws.once('message', (data: Buffer) => {
      clearTimeout(timer)
      resolve(JSON.parse(data.toString()))
    })
    ws.send(JSON.stringify(message))
  })
}
