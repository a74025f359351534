import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import bencode from 'bencode'
import { encodeInfo } from '../src/torrent/encode-info.js'
import { layoutFiles, pieceLengthFor } from '../src/torrent/layout.js'
import { fileSpans, pieceMap } from '../src/torrent/piece-map.js'

test('the direct info-dict writer matches bencode.encode byte for byte (ASCII, UTF-8, pads)', () => {
  const names = ['.dsync/data.dsync', 'pool/a.deb', 'pool/한국어/패키지.rpm', 'emoji/🙂 x.txt', 'dists/InRelease', 'z']
  const layout = layoutFiles(names.map((path, i) => ({ path, length: 1000 + i * 20_000 })), 16384)
  const pieces = randomBytes(20 * Math.ceil((layout.at(-1)!.offset + layout.at(-1)!.length) / 16384))
  const expected = bencode.encode({
    files: layout.map(f => f.pad ? { attr: 'p', length: f.length, path: ['.pad', String(f.length)] } : { length: f.length, path: f.path.split('/') }),
    name: '저장소-repo',
    'piece length': 16384,
    pieces,
  })
  assert.ok(encodeInfo(layout, '저장소-repo', 16384, pieces).equals(Buffer.from(expected)))
})

test('piece length is a pure function of the total: 16 KiB up to 32768 pieces, doubling, capped at 16 MiB', () => {
  assert.equal(pieceLengthFor(0), 16384)
  assert.equal(pieceLengthFor(16384 * 32768), 16384)
  assert.equal(pieceLengthFor(16384 * 32768 + 1), 32768)
  assert.equal(pieceLengthFor(2 ** 40), 1 << 24)
})

test('the piece map gives each piece to one file and marks the pad tail', () => {
  const layout = layoutFiles([{ path: 'a', length: 20000 }, { path: 'b', length: 16384 }, { path: 'c', length: 5 }], 16384)
  const map = pieceMap(layout, 16384)
  assert.deepEqual(map.files.map(f => [f.path, f.firstPiece, f.pieceCount]), [['a', 0, 2], ['b', 2, 1], ['c', 3, 1]])
  assert.deepEqual(fileSpans(map, 0).map(s => [s.piece, s.dataLength, s.pieceLength]), [[0, 16384, 16384], [1, 3616, 16384]])
  // The torrent's last piece is short and has no pad.
  assert.deepEqual(fileSpans(map, 2).map(s => [s.piece, s.dataLength, s.pieceLength]), [[3, 5, 5]])
})
