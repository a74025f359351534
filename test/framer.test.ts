import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import Wire from 'bittorrent-protocol'
import { MessageFramer } from '../src/swarm/framer.js'
import { takeBlock, type WireBlocks } from '../src/swarm/peer.js'

// The client feeds bittorrent-protocol's parser whole messages only (src/swarm/framer.ts).
// Whatever way TCP cuts the stream, what comes out must be the same bytes, each run starting
// and ending on a message boundary.

/** A peer-wire message: <length><id><body>. */
function msg(id: number, body: Buffer): Buffer {
  const m = Buffer.alloc(5 + body.length)
  m.writeUInt32BE(1 + body.length)
  m[4] = id
  body.copy(m, 5)
  return m
}

function stream(): { bytes: Buffer; ends: Set<number> } {
  const parts: Buffer[] = [Buffer.concat([Buffer.from([19]), Buffer.from('BitTorrent protocol'), randomBytes(48)])]
  const lengths = [0, 1, 5, 13, 16384 + 9, 3, 0, 16384 + 9, 2, 70_000, 1, 9]
  for (const n of lengths) {
    const m = Buffer.alloc(4 + n)
    m.writeUInt32BE(n)
    randomBytes(n).copy(m, 4)
    parts.push(m)
  }
  const ends = new Set<number>()
  let at = 0
  for (const p of parts) ends.add((at += p.length))
  return { bytes: Buffer.concat(parts), ends }
}

function feed(bytes: Buffer, cuts: number[], max = 1 << 20) {
  const out: Buffer[] = []
  const errors: string[] = []
  const f = new MessageFramer(b => out.push(Buffer.from(b)), r => errors.push(r), max)
  let prev = 0
  for (const c of [...cuts, bytes.length]) {
    f.push(bytes.subarray(prev, c))
    prev = c
  }
  return { out, errors }
}

test('whole messages come out, on boundaries, however the stream is cut', () => {
  const { bytes, ends } = stream()
  const cutsList: number[][] = [[]]
  // Every single cut point (splits inside the handshake, inside length prefixes, inside bodies)...
  for (let c = 1; c < 200; c++) cutsList.push([c])
  for (let c = 16380; c < 16500; c += 7) cutsList.push([c])
  // ...one byte at a time through the first messages, and random cuts.
  cutsList.push(Array.from({ length: 120 }, (_, i) => i + 1))
  for (let r = 0; r < 50; r++) {
    const cuts = Array.from({ length: 1 + (r % 9) }, () => 1 + Math.floor(Math.random() * (bytes.length - 1)))
    cutsList.push([...new Set(cuts)].sort((a, b) => a - b))
  }
  for (const cuts of cutsList) {
    const { out, errors } = feed(bytes, cuts)
    assert.deepEqual(errors, [])
    assert.ok(Buffer.concat(out).equals(bytes), `bytes differ with cuts ${cuts.join(',')}`)
    let at = 0
    for (const b of out) {
      assert.ok(b.length > 0)
      at += b.length
      assert.ok(ends.has(at), `a run ends inside a message (at ${at}) with cuts ${cuts.join(',')}`)
    }
  }
})

test('a message announced longer than the limit is refused before its bytes arrive', () => {
  const hs = Buffer.concat([Buffer.from([19]), Buffer.from('BitTorrent protocol'), randomBytes(48)])
  const head = Buffer.alloc(4)
  head.writeUInt32BE(64 << 20)
  const { out, errors } = feed(Buffer.concat([hs, head, Buffer.from([7])]), [hs.length + 2], 4 << 20)
  assert.equal(errors.length, 1)
  assert.match(errors[0], /message of 67108864 bytes/)
  assert.ok(Buffer.concat(out).equals(hs))
})

test('borrowed chunks: messages the Wire keeps (handshake, bitfield, extended) come out as copies that outlive the chunk', () => {
  const hs = Buffer.concat([Buffer.from([19]), Buffer.from('BitTorrent protocol'), randomBytes(48)])
  const kept = [hs, msg(5, randomBytes(40)), msg(20, randomBytes(300)), msg(99, randomBytes(3))]
  const block = msg(7, randomBytes(16384 + 8))
  const have = msg(4, Buffer.from([0, 0, 0, 9]))
  const bytes = Buffer.concat([kept[0], block, kept[1], have, kept[2], block, kept[3], have])
  for (const cut of [0, 30, 68, 100, 16500, bytes.length - 3]) {
    // One read buffer, overwritten after every read, as the socket does with `onread`.
    const readBuffer = Buffer.alloc(bytes.length)
    const held: Buffer[] = []
    const f = new MessageFramer(b => held.push(b), r => assert.fail(r), 1 << 20, true)
    for (const [from, to] of [[0, cut], [cut, bytes.length]]) {
      bytes.copy(readBuffer, 0, from, to)
      f.push(readBuffer.subarray(0, to - from))
      readBuffer.fill(0xee)
    }
    for (const k of kept) assert.ok(held.some(b => b.equals(k)), `a kept message (id ${k[4]}) was overwritten with the read buffer (cut at ${cut})`)
  }
})

test('a piece hook takes whole piece messages in their place in the stream; the rest is delivered as before', () => {
  // handshake, then: have, piece, piece, keep-alive, piece with an empty block, request, piece, bitfield
  const piece = (n: number) => msg(7, Buffer.concat([Buffer.from([0, 0, 0, n, 0, 0, 0, 0]), randomBytes(100 + n)]))
  const parts = [
    Buffer.concat([Buffer.from([19]), Buffer.from('BitTorrent protocol'), randomBytes(48)]),
    msg(4, Buffer.from([0, 0, 0, 1])), piece(1), piece(2), Buffer.alloc(4), msg(7, Buffer.alloc(8)),
    msg(6, Buffer.alloc(12)), piece(3), msg(5, Buffer.from([0xff])),
  ]
  const bytes = Buffer.concat(parts)
  for (const cut of [0, 1, 68, 70, 75, 80, 150, 200, bytes.length - 3]) {
    const order: { hooked: boolean; bytes: Buffer }[] = []
    const f = new MessageFramer(b => order.push({ hooked: false, bytes: Buffer.from(b) }), r => assert.fail(r), 1 << 20, true,
      (chunk, at, length) => order.push({ hooked: true, bytes: Buffer.from(chunk.subarray(at, at + length)) }))
    if (cut > 0) f.push(bytes.subarray(0, cut))
    f.push(bytes.subarray(cut))
    assert.ok(Buffer.concat(order.map(o => o.bytes)).equals(bytes), `bytes out of order with a cut at ${cut}`)
    for (const o of order.filter(o => o.hooked)) {
      assert.equal(o.bytes[4], 7)
      assert.equal(o.bytes.readUInt32BE(0) + 4, o.bytes.length)
    }
    // Every piece goes to the hook, one cut in two too (once assembled); nothing else does.
    assert.equal(order.filter(o => o.hooked).length, 4, `pieces hooked with a cut at ${cut}`)
  }
})

test('takeBlock: a block answers its request through the Wire, whose list keeps its order (in order or not), and the timeout follows', () => {
  const wire = new Wire('tcpOutgoing')
  const internals = wire as unknown as WireBlocks & { _timeout: unknown; peerChoking: boolean }
  internals.peerChoking = false
  wire.setTimeout(60_000, true)
  const got: string[] = []
  const ask = (piece: number, offset: number, length: number) =>
    wire.request(piece, offset, length, (err, block) => got.push(err ? `${piece}/${offset} ${err.message}` : `${piece}/${offset} ${Buffer.from(block!).toString()}`))
  const message = (piece: number, offset: number, text: string) => {
    const where = Buffer.alloc(8)
    where.writeUInt32BE(piece)
    where.writeUInt32BE(offset, 4)
    // Behind other bytes in the chunk, as the framer hands it on.
    return Buffer.concat([randomBytes(7), msg(7, Buffer.concat([where, Buffer.from(text)]))])
  }
  const take = (piece: number, offset: number, text: string) => {
    const chunk = message(piece, offset, text)
    takeBlock(internals, chunk, 7, chunk.length - 7)
  }
  ask(0, 0, 3)
  ask(1, 0, 4)
  ask(1, 4, 2)
  ask(2, 0, 5)
  ask(3, 0, 1)
  take(0, 0, 'abc')
  // Taken off the front: the rest keep their order.
  assert.deepEqual(internals.requests.map(r => `${r.piece}/${r.offset}`), ['1/0', '1/4', '2/0', '3/0'])
  take(1, 4, 'xy')
  // Out of order: the rest keep their order too (the Wire's _onPiece moved the newest request
  // into the hole, and every block after it was looked for past that one).
  assert.deepEqual(internals.requests.map(r => `${r.piece}/${r.offset}`), ['1/0', '2/0', '3/0'])
  take(1, 0, 'long')
  take(1, 0, 'dupe') // asked for no more: nobody gets it
  take(2, 0, 'sh') // not the length asked for: no request takes it
  take(3, 0, 'z')
  assert.deepEqual(got, ['0/0 abc', '1/4 xy', '1/0 long', '3/0 z'])
  assert.deepEqual(internals.requests.map(r => `${r.piece}/${r.offset}`), ['2/0'])
  // The Wire counts every block received, asked for or not (its _onPiece), as before.
  assert.equal(internals.downloaded, 3 + 2 + 4 + 4 + 2 + 1)
  assert.ok(internals._timeout, 'a request is still outstanding: the timeout runs')
  take(2, 0, 'fives')
  assert.equal(got.at(-1), '2/0 fives')
  assert.equal(internals.requests.length, 0)
  assert.equal(internals._timeout, null, 'no request left: the Wire cleared its timeout')
  wire.destroy()
})
