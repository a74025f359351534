import assert from 'node:assert/strict'
import { test } from 'node:test'
import { makePeerId } from '../src/shared/peer-id.js'
import { Downloader } from '../src/swarm/downloader.js'
import { PeerConnection } from '../src/swarm/peer.js'
import { sparseHost } from '../testbed/sparse-host.js'

// A real `dsync service` on 127.0.18.2 (port 47921) serving one sparse file of 40 MiB.

const MiB = 1 << 20
const FILE_BYTES = 40 * MiB

interface Asked {
  /** Requested bytes not yet delivered, this request included. */
  outstanding: number
  /** Bytes of the download not yet requested, before this request. */
  unasked: number
  /** Bytes delivered when it was made: requests of one top-up share it. */
  delivered: number
  length: number
}

test('a peer that has proved itself (1 MiB delivered) gets up to 4 MiB in flight, topped up in sends of several MiB; the last MiBs go back to 1 MiB in flight', { timeout: 120_000 }, async () => {
  const { h, info, pieces } = await sparseHost('127.0.18.2', FILE_BYTES)
  const total = pieces.reduce((n, p) => n + p.dataLength, 0)
  assert.equal(total, FILE_BYTES)

  const peer = await PeerConnection.open({ address: { host: h.address, port: h.port }, infoHash: info.infoHash, peerId: makePeerId(), idleTimeoutMs: 10_000 })
  const asked: Asked[] = []
  let requested = 0
  const request = peer.request.bind(peer)
  peer.request = (piece, offset, length, done) => {
    asked.push({ outstanding: requested + length - peer.downloaded, unasked: total - requested, delivered: peer.downloaded, length })
    requested += length
    request(piece, offset, length, done)
  }
  try {
    await peer.ready()
    let zeros = 0
    const d = new Downloader({ pieces, hashes: info.pieces, onPiece: (_span, data) => { zeros += data.every(b => b === 0) ? 1 : 0 } })
    const dropped = new Promise<never>((_, reject) => d.on('peer-done', (_p: PeerConnection, reason: string) => reject(new Error(`dropped: ${reason}`))))
    d.addPeer(peer)
    await Promise.race([d.whenDone(), dropped])
    assert.equal(zeros, pieces.length)
  } finally {
    peer.close('test over')
  }

  const most = Math.max(...asked.map(a => a.outstanding))
  assert.ok(most > 3.5 * MiB, `at most ${most} bytes were in flight`)
  const block = Math.max(...asked.map(a => a.length))
  // Proved by its first full pipeline: no more than 1 MiB in flight before 1 MiB was delivered,
  // and deep already before 2 MiB was (a host at 200 Mbit/s sends 1 MiB in ~40 ms; the ramp's
  // stalls of the client's event loop are longer than that, bench swarm session 25).
  const first = asked.filter(a => a.delivered < MiB)
  assert.ok(first.length > 0)
  assert.ok(Math.max(...first.map(a => a.outstanding)) <= MiB + block, 'deep before the first MiB was delivered')
  const early = asked.filter(a => a.delivered < 2 * MiB)
  const earlyMost = Math.max(...early.map(a => a.outstanding))
  assert.ok(earlyMost > 2 * MiB, `at most ${earlyMost} bytes in flight before 2 MiB was delivered`)
  // A top-up is the run of requests made at one count of delivered bytes (one pump, one send).
  const topUps = new Map<number, Asked[]>()
  for (const a of asked) topUps.set(a.delivered, [...(topUps.get(a.delivered) ?? []), a])
  const deepSends = [...topUps.values()].filter(run => run[0].delivered >= 4 * MiB && run[0].unasked >= 8 * MiB)
  assert.ok(deepSends.length > 0)
  const deepBytes = deepSends.flat().reduce((n, a) => n + a.length, 0)
  assert.ok(deepBytes / deepSends.length >= 2 * MiB, `${deepSends.length} top-ups of ${deepBytes} bytes once deep`)
  // The end: a top-up begun with fewer bytes left to ask than the deep pipeline keeps 1 MiB in
  // flight at most (one block more: the one that crossed it).
  const late = [...topUps.values()].filter(run => run[0].unasked < 4 * MiB).flat()
  assert.ok(late.length > 0)
  const lateMost = Math.max(...late.map(a => a.outstanding))
  assert.ok(lateMost <= MiB + block, `${lateMost} bytes in flight with under 4 MiB left to ask`)
})
