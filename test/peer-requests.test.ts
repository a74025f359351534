import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { makePeerId } from '../src/shared/peer-id.js'
import { PeerConnection } from '../src/swarm/peer.js'
import { readTorrentInfo } from '../src/torrent/read.js'
import { prepareHost, startHost } from '../testbed/host.js'
import { startPairProxy } from '../testbed/pair-proxy.js'

// A real `dsync service` on 127.0.26.2; the proxy in front of it on 127.0.26.9.

interface Asked { piece: number; offset: number; length: number }

/**
 * A proxy that passes everything but the client's request messages (BEP 3 id 6): those are
 * parsed, recorded and kept from the host, so they are never answered. Anything in the
 * client's stream that is not whole, well-framed messages after the handshake fails the parse.
 */
async function swallowRequests(target: { host: string; port: number }): Promise<{ address: string; asked: Asked[]; bad: string[]; order: string[] }> {
  const asked: Asked[] = []
  const bad: string[] = []
  /** Requests and cancels in the order the client sent them ("request 1 0", "cancel 1 0"). */
  const order: string[] = []
  const address = await startPairProxy('127.0.26.9', target, (client, upstream) => {
    let pending = Buffer.alloc(0)
    let handshaken = false
    client.on('data', (b: Buffer) => {
      pending = Buffer.concat([pending, b])
      if (!handshaken) {
        if (pending.length < 68) return
        upstream.write(pending.subarray(0, 68))
        pending = pending.subarray(68)
        handshaken = true
      }
      while (pending.length >= 4 && pending.length >= 4 + pending.readUInt32BE(0)) {
        const len = pending.readUInt32BE(0)
        const message = pending.subarray(0, 4 + len)
        pending = pending.subarray(4 + len)
        if (len === 13 && message[4] === 8) order.push(`cancel ${message.readUInt32BE(5)} ${message.readUInt32BE(9)}`)
        if (len > 0 && message[4] === 6) {
          if (len !== 13) bad.push(`request of length ${len}`)
          else {
            asked.push({ piece: message.readUInt32BE(5), offset: message.readUInt32BE(9), length: message.readUInt32BE(13) })
            order.push(`request ${message.readUInt32BE(5)} ${message.readUInt32BE(9)}`)
          }
        } else upstream.write(message)
      }
    })
    upstream.on('data', (b: Buffer) => client.write(b))
  })
  return { address, asked, bad, order }
}

/** A real host with a few small files, and the proxy in front of it. */
async function hostBehindProxy() {
  const files: Record<string, Buffer | string> = {}
  for (let i = 0; i < 6; i++) files[`pool/main/pkg${i}.deb`] = Buffer.alloc(1_000 + i * 700, i + 1)
  const h = await prepareHost('127.0.26.2', { rocky: files })
  await startHost(h, ['rocky'])
  const info = readTorrentInfo(readFileSync(join(h.webroot, 'rocky', '.dsync', 'rocky.torrent')))
  const proxy = await swallowRequests({ host: '127.0.26.2', port: h.port })
  return { info, proxy }
}

/** A connection to the host through the proxy, its handshake done. */
async function peerBehindProxy(idleTimeoutMs: number) {
  const { info, proxy } = await hostBehindProxy()
  const [host, port] = proxy.address.split(':')
  const peer = await PeerConnection.open({ address: { host, port: Number(port) }, infoHash: info.infoHash, peerId: makePeerId(), idleTimeoutMs })
  return { peer, proxy }
}

test('requests reach the peer as whole request messages in the order asked; unanswered, the oldest times out, the peer is dropped and every request fails', { timeout: 60_000 }, async () => {
  const { peer, proxy } = await peerBehindProxy(1_000)
  try {
    await peer.ready()
    const closed = new Promise<string>(resolve => peer.once('close', resolve))
    const wanted: Asked[] = [{ piece: 1, offset: 0, length: 1_000 }, { piece: 2, offset: 0, length: 700 }, { piece: 3, offset: 100, length: 50 }, { piece: 1, offset: 500, length: 500 }]
    const answers: (string | undefined)[] = []
    const settled = Promise.all(wanted.map((w, i) => new Promise<void>(resolve => {
      peer.request(w.piece, w.offset, w.length, (err, block) => {
        answers[i] = err ? err.message : `a block of ${block?.length}`
        resolve()
      })
    })))
    // The host's answers would have come within milliseconds; only the request timeout ends this.
    const reason = await Promise.race([closed, new Promise<string>(resolve => setTimeout(() => resolve('still open after 10 s'), 10_000))])
    assert.match(reason, /^timed out waiting for data/)
    await settled
    // The oldest request is the one timed out; the others fail as the connection closes.
    assert.deepEqual(answers, ['request has timed out', 'wire was closed', 'wire was closed', 'wire was closed'])
    assert.deepEqual(proxy.bad, [])
    assert.deepEqual(proxy.asked, wanted)
  } finally {
    peer.close('test over')
  }
})

test('a message the Wire sends after a request in the same turn (a cancel) does not overtake it: the peer sees the request, then its cancel', { timeout: 60_000 }, async () => {
  const { peer, proxy } = await peerBehindProxy(10_000)
  try {
    await peer.ready()
    const answer = new Promise<string>(resolve => peer.request(2, 0, 700, err => resolve(err ? err.message : 'a block')))
    ;(peer.wire as unknown as { cancel(piece: number, offset: number, length: number): void }).cancel(2, 0, 700)
    assert.equal(await answer, 'request was cancelled')
    const deadline = Date.now() + 5_000
    while (proxy.order.length < 2 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
    assert.deepEqual(proxy.order, ['request 2 0', 'cancel 2 0'])
  } finally {
    peer.close('test over')
  }
})
