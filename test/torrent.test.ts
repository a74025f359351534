import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import bencode from 'bencode'
import { encodeInfo, encodeInfoRows, encodeTorrentRows, entryByteLength, padEntryByteLength } from '../src/torrent/encode-info.js'
import { torrentHead, wrapInfo } from '../src/torrent/build.js'
import { matchFileList, type ExpectedFiles } from '../src/torrent/file-list.js'
import { Reader } from '../src/torrent/read.js'
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

test('the row writer (shards from data.dsync bytes) and its entry sizes match encodeInfo byte for byte', () => {
  const names = ['pool/a.deb', 'pool/한국어/패키지.rpm', 'back\\slash', 'tab\there', 'emoji/🙂 x.txt', 'p/'.repeat(40) + 'deep', 'z']
  const lengths = [1, 9, 10, 99, 100, 16384, 16385, 123_456_789]
  const files = names.flatMap((path, i) => lengths.map((length, j) => ({ path: `${path}${i}${j}`, length })))
  const layout = layoutFiles(files, 16384)
  const pieces = randomBytes(20 * Math.ceil((layout.at(-1)!.offset + layout.at(-1)!.length) / 16384))
  const rows = encodeInfoRows(files.length, i => Buffer.from(files[i].path), i => files[i].length, '저장소-repo', 16384, pieces)
  const whole = encodeInfo(layout, '저장소-repo', 16384, pieces)
  assert.ok(rows.equals(whole))
  // Every entry's size as gendsync computes it to copy runs of entries from a previous torrent.
  let sum = 0
  files.forEach((f, i) => {
    const path = Buffer.from(f.path)
    sum += entryByteLength(path, 0, path.length, f.length)
    if (f.length % 16384 !== 0 && i < files.length - 1) sum += padEntryByteLength(16384 - (f.length % 16384))
  })
  assert.equal(sum, whole.lastIndexOf('e4:name', whole.length - pieces.length) - 'd5:filesl'.length)
})

test('the whole-torrent row writer: wrapInfo\'s bytes, in one buffer sized from the entry bytes (never grown)', () => {
  const names = ['pool/a.deb', 'pool/한국어/패키지.rpm', 'back\\slash', 'p/'.repeat(40) + 'deep', 'z']
  const lengths = [1, 100, 16384, 16385, 1_000_000]
  const files = names.flatMap((path, i) => lengths.map((length, j) => ({ path: `${path}${i}${j}`, length })))
  const pieces = randomBytes(20 * files.reduce((n, f) => n + Math.ceil(f.length / 16384), 0))
  let entryBytes = 0
  let longest = 0
  files.forEach((f, i) => {
    const path = Buffer.from(f.path)
    entryBytes += entryByteLength(path, 0, path.length, f.length)
    if (f.length % 16384 !== 0 && i < files.length - 1) entryBytes += padEntryByteLength(16384 - (f.length % 16384))
    longest = Math.max(longest, path.length)
  })
  const trackers = ['http://t.example/announce']
  const head = torrentHead(trackers)
  const path = (i: number) => Buffer.from(files[i].path)
  const got = encodeTorrentRows(files.length, path, i => files[i].length, 'repo', 16384, pieces, head, entryBytes, longest)
  const want = wrapInfo(encodeInfoRows(files.length, path, i => files[i].length, 'repo', 16384, pieces), trackers)
  assert.ok(got.torrent.equals(want.torrent))
  assert.ok(got.info.equals(got.torrent.subarray(head.length, got.torrent.length - 1)))
  // A grown buffer is twice the one asked for; this one is the size asked for, within its margins.
  assert.equal(got.torrent.buffer, got.info.buffer)
  assert.ok(got.torrent.buffer.byteLength < got.torrent.length + 2 * longest + 512, `buffer ${got.torrent.buffer.byteLength} for ${got.torrent.length} bytes`)
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

test('a file-list walk keeps its own offsets: a later walk (which reuses its working array) changes no earlier result', () => {
  // Two lists of whole-piece files (no pads between them), with different offsets, walked one after the other.
  const pieceLength = 16
  const list = (files: [string, number][]) => Buffer.from(`l${files.map(([p, n]) => `d6:lengthi${n}e4:pathl${p.length}:${p}ee`).join('')}e`)
  const expected = (files: [string, number][]): ExpectedFiles => ({
    count: files.length, length: i => files[i][1], pathBuf: i => Buffer.from(files[i][0]), pathStart: () => 0, pathEnd: i => Buffer.byteLength(files[i][0]),
  })
  const a: [string, number][] = [['a', 16], ['b', 32], ['c', 16]]
  const b: [string, number][] = [['d', 48], ['e', 64], ['f', 16]]
  const first = matchFileList(new Reader(list(a)), pieceLength, expected(a), 0, true)!
  assert.deepEqual([...first.offsets], [0, 16, 48])
  const second = matchFileList(new Reader(list(b)), pieceLength, expected(b), 0, true)!
  assert.deepEqual([...second.offsets], [0, 48, 112])
  assert.deepEqual([...first.offsets], [0, 16, 48], 'the first walk\'s offsets are its own')
  // A list longer than the working array's first size (4,096) grows it, and still leaves earlier results alone.
  const long: [string, number][] = Array.from({ length: 5000 }, (_, i) => [`f${i}`, 16 * (1 + (i % 3))])
  const third = matchFileList(new Reader(list(long)), pieceLength, expected(long), 0, true)!
  assert.equal(third.offsets.length, 5000)
  assert.equal(third.offsets[4999], long.slice(0, 4999).reduce((s, [, n]) => s + n, 0))
  assert.deepEqual([...second.offsets], [0, 48, 112])
})
