import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { test } from 'node:test'
import { loadGeneration } from '../src/host/generation.js'
import { HOST_PORT, prepareHost, startHost } from '../testbed/host.js'
import { handshakeBytes, wireMessage as message, withTimeout } from '../testbed/leecher.js'

const A = '127.0.41.2'

/** Reads the host's messages after its handshake: piece blocks by "piece:offset", and every id seen. */
class Reader {
  private buf = Buffer.alloc(0)
  private handshake = true
  readonly blocks = new Map<string, Buffer>()
  readonly ids: number[] = []
  private waiters: (() => void)[] = []

  constructor(socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d])
      if (this.handshake && this.buf.length >= 68) {
        this.buf = this.buf.subarray(68)
        this.handshake = false
      }
      while (!this.handshake && this.buf.length >= 4) {
        const len = this.buf.readUInt32BE(0)
        if (this.buf.length < 4 + len) break
        const msg = this.buf.subarray(4, 4 + len)
        this.buf = this.buf.subarray(4 + len)
        if (len === 0) continue
        this.ids.push(msg[0])
        if (msg[0] === 7) this.blocks.set(`${msg.readUInt32BE(1)}:${msg.readUInt32BE(5)}`, Buffer.from(msg.subarray(9)))
      }
      for (const w of this.waiters.splice(0)) w()
    })
  }

  async until(test: () => boolean, what: string): Promise<void> {
    await withTimeout((async () => {
      while (!test()) await new Promise<void>(resolve => this.waiters.push(resolve))
    })(), 15_000, what)
  }
}

test('block requests cut at any byte, between keep-alives and other messages, are all answered with the right bytes', { timeout: 120_000 }, async () => {
  // Small files (each its own piece: read whole) and one big file (read through the fd cache).
  const files: Record<string, Buffer> = {}
  for (let i = 0; i < 40; i++) files[`pool/f${i}.deb`] = randomBytes(100 + i * 97)
  files['images/big.iso'] = randomBytes(600_000)
  const host = await prepareHost(A, { r: files })
  await startHost(host, ['r'])
  const save = join(host.webroot, 'r')
  const gen = loadGeneration('r', save)
  const wanted = gen.segments.list().filter(s => s.source === 'file').flatMap(s => {
    const data = readFileSync(join(save, s.path))
    const piece = s.offset / gen.pieceLength
    if (s.length <= 16384) return [{ piece, offset: 0, data }]
    // Three blocks of the big file, the last one short (its end).
    const pieces = Math.ceil(s.length / gen.pieceLength)
    const last = s.length - (pieces - 1) * gen.pieceLength
    return [
      { piece, offset: 0, data: data.subarray(0, 16384) },
      { piece: piece + 1, offset: 16384, data: data.subarray(gen.pieceLength + 16384, gen.pieceLength + 32768) },
      { piece: piece + pieces - 1, offset: 0, data: data.subarray(s.length - last, s.length - last + Math.min(last, 16384)) },
    ].filter(b => b.offset + b.data.length <= gen.pieceLength)
  })
  assert.ok(wanted.length >= 40)

  const socket = connect({ host: A, port: HOST_PORT, localAddress: '127.0.41.10' })
  socket.setNoDelay(true)
  const reader = new Reader(socket)
  await new Promise<void>(resolve => socket.once('connect', () => resolve()))
  socket.write(Buffer.concat([handshakeBytes(gen.infoHash), message(2)])) // interested
  await reader.until(() => reader.ids.includes(1), 'unchoke') // the host unchokes at once

  // Every request, with a keep-alive and an 'interested' between some of them, sent in pieces
  // of 1 to 23 bytes (each its own segment: no delay, and a pause between writes), so the host
  // reads requests cut at every place: in the length prefix, after the id, in the numbers.
  const parts: Buffer[] = []
  wanted.forEach((b, i) => {
    parts.push(message(6, b.piece, b.offset, b.data.length))
    if (i % 3 === 0) parts.push(Buffer.alloc(4)) // keep-alive
    if (i % 5 === 0) parts.push(message(2))
  })
  const stream = Buffer.concat(parts)
  let at = 0
  for (let size = 1; at < stream.length; size = (size % 23) + 1) {
    socket.write(stream.subarray(at, at + size))
    at += size
    await new Promise(r => setTimeout(r, 2))
  }
  await reader.until(() => reader.blocks.size >= wanted.length, `${wanted.length} blocks (got ${reader.blocks.size})`)
  for (const b of wanted) {
    const got = reader.blocks.get(`${b.piece}:${b.offset}`)
    assert.ok(got?.equals(b.data), `block ${b.piece}:${b.offset} (${b.data.length} bytes) differs or is missing`)
  }
  socket.destroy()
})

test('blocks of files read whole and of read windows keep their bytes while the read buffers are used again', { timeout: 120_000 }, async () => {
  // Files of 5-16 KB (each one block, sent as a view of its read buffer, not copied) and one big
  // file served from read windows: every buffer is given back once its block has been written
  // (read-buffers.ts), and the next reads take them again. A buffer given back before the socket
  // wrote its block carries the next file's bytes by then (all of a batch's reads happen in one
  // turn, the writes at its end).
  const H = '127.0.42.2'
  const files: Record<string, Buffer> = {}
  for (let i = 0; i < 60; i++) files[`pool/g${i}.deb`] = randomBytes(5000 + ((i * 7919) % 11_000))
  files['images/big.iso'] = randomBytes(1_500_000)
  const host = await prepareHost(H, { r: files })
  await startHost(host, ['r'])
  const save = join(host.webroot, 'r')
  const gen = loadGeneration('r', save)
  const wanted = gen.segments.list().filter(s => s.source === 'file').flatMap(s => {
    const data = readFileSync(join(save, s.path))
    const blocks: { piece: number; offset: number; data: Buffer }[] = []
    for (let at = 0; at < s.length; at += 16384) {
      const start = s.offset + at
      const length = Math.min(16384, s.length - at, gen.pieceLength - (start % gen.pieceLength))
      blocks.push({ piece: Math.floor(start / gen.pieceLength), offset: start % gen.pieceLength, data: data.subarray(at, at + length) })
    }
    return blocks
  })
  assert.ok(wanted.length >= 150)
  const socket = connect({ host: H, port: HOST_PORT, localAddress: '127.0.42.10' })
  socket.setNoDelay(true)
  const reader = new Reader(socket)
  await new Promise<void>(resolve => socket.once('connect', () => resolve()))
  socket.write(Buffer.concat([handshakeBytes(gen.infoHash), message(2)]))
  await reader.until(() => reader.ids.includes(1), 'unchoke')
  // Three rounds: the later ones read into buffers the earlier ones gave back. 40 requests a
  // write: one chunk, one batch, under the host's limit of reads in flight per peer.
  for (let round = 0; round < 3; round++) {
    reader.blocks.clear()
    for (let i = 0; i < wanted.length; i += 40) {
      socket.write(Buffer.concat(wanted.slice(i, i + 40).map(b => message(6, b.piece, b.offset, b.data.length))))
      await reader.until(() => reader.blocks.size >= Math.min(i + 40, wanted.length), `round ${round}: ${Math.min(i + 40, wanted.length)} blocks (got ${reader.blocks.size})`)
    }
    for (const b of wanted) {
      const got = reader.blocks.get(`${b.piece}:${b.offset}`)
      assert.ok(got?.equals(b.data), `round ${round}: block ${b.piece}:${b.offset} (${b.data.length} bytes) differs or is missing`)
    }
  }
  socket.destroy()
})
