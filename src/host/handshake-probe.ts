import { connect } from 'node:net'
import type { PeerAddress } from '../swarm/address.js'

const PROTOCOL = Buffer.from('\x13BitTorrent protocol', 'latin1')
const HANDSHAKE_BYTES = 68

/**
 * Does a BitTorrent peer at `addr` answer a handshake for `infoHash`? Connects, sends the
 * 68-byte handshake, reads the peer's, compares the infohash, hangs up; false on anything else
 * (refused, silent for `timeoutMs`, another torrent, not BitTorrent). A host checks this before
 * naming an address it heard over ut_pex, so a peer cannot make it advertise arbitrary ones.
 */
export function answersFor(addr: PeerAddress, infoHash: string, peerId: Buffer, localAddress?: string, timeoutMs = 5000): Promise<boolean> {
  return new Promise(resolve => {
    const socket = connect({ host: addr.host, port: addr.port, localAddress })
    let got = Buffer.alloc(0)
    const done = (ok: boolean) => {
      clearTimeout(timer)
      socket.destroy()
      resolve(ok)
    }
    const timer = setTimeout(() => done(false), timeoutMs)
    socket.on('error', () => done(false))
    socket.on('close', () => done(false))
    socket.on('connect', () => socket.write(Buffer.concat([PROTOCOL, Buffer.alloc(8), Buffer.from(infoHash, 'hex'), peerId])))
    socket.on('data', chunk => {
      got = Buffer.concat([got, chunk]).subarray(0, HANDSHAKE_BYTES)
      if (got.length < 48) return
      done(got.subarray(0, 20).equals(PROTOCOL) && got.subarray(28, 48).toString('hex') === infoHash)
    })
  })
}
