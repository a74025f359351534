import type { RemoteInfo, Socket } from 'node:dgram'
import { plainAddress } from '../src/shared/address.js'
import { compactPeer } from './address.js'
import type { TrackerContext } from './context.js'
import type { Refusal } from './policy.js'
import type { AnnounceEvent } from './swarm-store.js'

const PROTOCOL_HI = 0x417
const PROTOCOL_LO = 0x27101980
const CONNECT = 0
const ANNOUNCE = 1
const SCRAPE = 2
const ERROR = 3
const EVENTS: AnnounceEvent[] = ['update', 'completed', 'started', 'stopped']
/** Replies stay within one 1500-byte Ethernet frame. */
const MAX_PEERS_V4 = 200
const MAX_PEERS_V6 = 80
const MAX_SCRAPE = 74

/**
 * Our own BEP 15 front end instead of bittorrent-tracker's: it checks connection ids
 * (stock accepts the protocol magic as an id, so spoofed packets are served), ignores the
 * announce's `ip` field unless the sender is a configured proxy, reads the passkey from
 * the BEP 41 URL option, and answers from the shared compact swarm store without
 * building objects per request, which is what makes it faster (see docs/TRACKER.md).
 * Packets that fail the address, rate or connection-id checks are dropped without a
 * reply, so the tracker never answers a forged source.
 */
export function attachUdp(socket: Socket, ctx: TrackerContext): void {
  socket.on('message', (msg, rinfo) => {
    try {
      handle(socket, ctx, msg, rinfo)
    } catch {
      ctx.stats.refused.malformed++
    }
  })
}

function handle(socket: Socket, ctx: TrackerContext, msg: Buffer, rinfo: RemoteInfo): void {
  if (msg.length < 16) return
  const address = plainAddress(rinfo.address)
  if (ctx.admit('udp', address)) return
  const action = msg.readUInt32BE(8)
  const tx = msg.readUInt32BE(12)
  if (action === CONNECT) {
    if (msg.readUInt32BE(0) !== PROTOCOL_HI || msg.readUInt32BE(4) !== PROTOCOL_LO) return
    if (!ctx.connects.take()) {
      ctx.stats.refused.rate++
      return
    }
    const reply = Buffer.allocUnsafe(16)
    reply.writeUInt32BE(CONNECT, 0)
    reply.writeUInt32BE(tx, 4)
    ctx.ids.issue(rinfo.address, rinfo.port).copy(reply, 8)
    socket.send(reply, rinfo.port, rinfo.address)
    return
  }
  if (!ctx.ids.verify(msg, rinfo.address, rinfo.port)) {
    ctx.stats.refused['connection-id']++
    return
  }
  if (action === ANNOUNCE) announce(socket, ctx, msg, rinfo, address, tx)
  else if (action === SCRAPE) scrape(socket, ctx, msg, rinfo, tx)
}

function announce(socket: Socket, ctx: TrackerContext, msg: Buffer, rinfo: RemoteInfo, address: string, tx: number): void {
  if (msg.length < 98) {
    ctx.stats.refused.malformed++
    return
  }
  const infoHash = msg.toString('hex', 16, 36)
  const refusal = ctx.policy.checkKey(passkeyOf(urlData(msg))) ?? ctx.policy.checkTorrent(infoHash)
  if (refusal) return refuse(socket, ctx, rinfo, tx, address, refusal)
  const left = msg.readUInt32BE(64) === 0 && msg.readUInt32BE(68) === 0 ? 0 : 1
  const event = EVENTS[msg.readUInt32BE(80)] ?? 'update'
  const port = msg.readUInt16BE(96)
  if (port === 0) {
    ctx.stats.refused.malformed++
    return error(socket, rinfo, tx, 'invalid port')
  }
  // The ip field is the client's claim; only a proxy we were told to trust may make it.
  let ip = address
  const claimed = msg.readUInt32BE(84)
  if (claimed !== 0 && ctx.proxies?.restricted && ctx.proxies.allows(address)) {
    ip = `${msg[84]}.${msg[85]}.${msg[86]}.${msg[87]}`
  }
  const peer = compactPeer(ip, port)
  if (!peer) return
  const v6 = peer.length === 18
  const asked = msg.readInt32BE(92)
  const cap = v6 ? MAX_PEERS_V6 : MAX_PEERS_V4
  const numwant = event === 'stopped' ? 0 : asked < 0 ? ctx.defaultNumwant : Math.min(asked, cap)
  if (event === 'started') ctx.stats.noteClient(msg.subarray(36, 56))
  const r = ctx.store.announce(infoHash, peer, event, left === 0, numwant, v6 ? 6 : 4)
  ctx.stats.announces.udp++
  const peers = v6 ? r.peers6 : r.peers4
  const size = v6 ? 18 : 6
  const reply = Buffer.allocUnsafe(20 + peers.length * size)
  reply.writeUInt32BE(ANNOUNCE, 0)
  reply.writeUInt32BE(tx, 4)
  reply.writeUInt32BE(ctx.interval, 8)
  reply.writeUInt32BE(r.incomplete, 12)
  reply.writeUInt32BE(r.complete, 16)
  let off = 20
  for (const p of peers) off += reply.write(p, off, 'latin1')
  socket.send(reply, rinfo.port, rinfo.address)
}

function scrape(socket: Socket, ctx: TrackerContext, msg: Buffer, rinfo: RemoteInfo, tx: number): void {
  const count = Math.min(MAX_SCRAPE, Math.floor((msg.length - 16) / 20))
  if (count <= 0) {
    ctx.stats.refused.malformed++
    return error(socket, rinfo, tx, 'info_hash required')
  }
  // A scrape packet has no room for BEP 41 options, so it cannot carry a passkey.
  const keyRefusal = ctx.policy.checkKey(undefined)
  if (keyRefusal) return refuse(socket, ctx, rinfo, tx, plainAddress(rinfo.address), keyRefusal)
  const reply = Buffer.allocUnsafe(8 + count * 12)
  reply.writeUInt32BE(SCRAPE, 0)
  reply.writeUInt32BE(tx, 4)
  for (let i = 0; i < count; i++) {
    const infoHash = msg.toString('hex', 16 + i * 20, 36 + i * 20)
    const refusal = ctx.policy.checkTorrent(infoHash)
    if (refusal) return refuse(socket, ctx, rinfo, tx, plainAddress(rinfo.address), refusal)
    const s = ctx.store.scrape(infoHash)
    reply.writeUInt32BE(s.complete, 8 + i * 12)
    reply.writeUInt32BE(s.downloaded, 12 + i * 12)
    reply.writeUInt32BE(s.incomplete, 16 + i * 12)
  }
  ctx.stats.scrapes.udp++
  socket.send(reply, rinfo.port, rinfo.address)
}

function refuse(socket: Socket, ctx: TrackerContext, rinfo: RemoteInfo, tx: number, address: string, refusal: Refusal): void {
  ctx.refuse('udp', address, refusal)
  error(socket, rinfo, tx, refusal)
}

function error(socket: Socket, rinfo: RemoteInfo, tx: number, message: string): void {
  const text = Buffer.from(message, 'utf8')
  const reply = Buffer.allocUnsafe(8 + text.length)
  reply.writeUInt32BE(ERROR, 0)
  reply.writeUInt32BE(tx, 4)
  text.copy(reply, 8)
  socket.send(reply, rinfo.port, rinfo.address)
}

/** BEP 41 options after the 98-byte announce: the URL path and query the client was given. */
export function urlData(msg: Buffer): string {
  let pos = 98
  let out = ''
  while (pos < msg.length) {
    const type = msg[pos++]
    if (type === 0) break
    if (type === 1) continue
    if (pos >= msg.length) break
    const len = msg[pos++]
    if (type === 2) out += msg.toString('latin1', pos, Math.min(msg.length, pos + len))
    pos += len
    if (out.length > 1024) break
  }
  return out
}

/** `/KEY/announce` → KEY; anything else → undefined. */
export function passkeyOf(path: string): string | undefined {
  const m = /^\/([^/?]+)\/announce(?:\?|$)/.exec(path)
  return m ? m[1] : undefined
}
