import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import bencode from 'bencode'
import { readTorrentInfo } from '../src/torrent/read.js'

/** The file list as a full bencode decode gives it: each part decoded, then joined by `/`. */
function reference(torrent: Buffer): { path: string; length: number; pad: boolean }[] {
  const t = bencode.decode(torrent) as { info: { files: { length: number; path: Uint8Array[]; attr?: Uint8Array }[] } }
  return t.info.files.map(f => ({
    path: f.path.map(p => Buffer.from(p).toString('utf8')).join('/'),
    length: f.length,
    pad: f.attr !== undefined && Buffer.from(f.attr).includes(0x70),
  }))
}

function torrentOf(files: Record<string, unknown>[]): Buffer {
  return Buffer.from(bencode.encode({ announce: 'http://t.example/announce', info: { files, name: 'repo', 'piece length': 16384, pieces: randomBytes(40) } }))
}

test('the files walk gives what a full decode gives: parts joined, UTF-8, pads by attr, unknown keys, long and broken paths', () => {
  const long = Array.from({ length: 300 }, (_, i) => `dir-${i}-${'x'.repeat(20)}`) // ~9 KB: past the walk's first scratch buffer
  const torrent = torrentOf([
    { length: 5, path: ['.dsync', 'data.dsync'] },
    { attr: 'p', length: 16379, path: ['.pad', '16379'] },
    { length: 7, path: ['pool', '한국어', '패키지.rpm'], md5sum: 'abc', sha1: randomBytes(20) },
    { attr: 'x', length: 0, path: ['single'] },
    { attr: 'hpx', length: 9, path: ['.pad', '9'] },
    { length: 3, path: long },
    // A UTF-8 sequence cut at a part's end, and one split between two parts.
    { length: 1, path: [Buffer.from([0x61, 0xe2, 0x82]), Buffer.from([0xac, 0x62])] },
    { length: 2, path: ['', 'empty-first', ''] },
    { length: 4, path: ['after/long'] },
  ])
  const info = readTorrentInfo(torrent)
  assert.deepEqual(info.files, reference(torrent))
  assert.equal(info.files[5].path, long.join('/'))
  assert.equal(info.files[8].path, 'after/long')
  assert.deepEqual(info.trackers, ['http://t.example/announce'])
})

test('a file entry without a path, with an empty path list, or without a length is refused', () => {
  for (const entry of [{ length: 1, path: [] }, { length: 1 }, { path: ['a'] }]) {
    assert.throws(() => readTorrentInfo(torrentOf([entry])), /file entry without length or path/)
  }
  assert.throws(() => readTorrentInfo(torrentOf([{ length: 1, path: 'notalist' }])), /expected a list/)
})
