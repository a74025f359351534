import assert from 'node:assert/strict'
import { readFileSync, truncateSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { makePeerId } from '../src/shared/peer-id.js'
import { Downloader } from '../src/swarm/downloader.js'
import { PeerConnection, STANDARD_BLOCK } from '../src/swarm/peer.js'
import { layoutOf } from '../src/sync/torrent-check.js'
import { fileSpans, pieceMap } from '../src/torrent/piece-map.js'
import { readTorrentInfo } from '../src/torrent/read.js'
import { prepareHost, startHost } from '../testbed/host.js'
import { hasLibtorrent, startLibtorrentSeeder } from '../testbed/seeders.js'

const SKIP = hasLibtorrent ? false : 'python3-libtorrent is not installed (apt-get install python3-libtorrent)'

// A real `dsync service` on 127.0.17.2 (port 47921) and a libtorrent seeder of the same
// torrent on 127.0.17.3 (random port).

/**
 * A repository big enough for pieces of 32 KiB (more than 512 MiB: the piece length follows
 * the total size): one sparse file of 513 MiB (no disk used) beside a few small files.
 */
async function bigRepo() {
  const files: Record<string, Buffer | string> = { 'pool/zero.img': '' }
  for (let i = 0; i < 6; i++) files[`pool/main/pkg${i}.deb`] = Buffer.alloc(20_000 + i * 9_001, i + 1)
  const h = await prepareHost('127.0.17.2', { rocky: files })
  truncateSync(join(h.webroot, 'rocky', 'pool', 'zero.img'), 513 << 20)
  const g = await h.cli('--json', 'gendsync')
  assert.equal(g.code, 0, g.stderr)
  await startHost(h, ['rocky'])
  const torrent = join(h.webroot, 'rocky', '.dsync', 'rocky.torrent')
  return { h, torrent, info: readTorrentInfo(readFileSync(torrent)) }
}

/** Fetches the small files and the first pieces of the big one from one peer; returns the block lengths asked. */
async function fetchFrom(address: string, info: ReturnType<typeof readTorrentInfo>, expected: (path: string, offset: number, length: number) => Buffer): Promise<number[]> {
  const map = pieceMap(layoutOf(info), info.pieceLength)
  const [host, port] = address.split(':')
  // A peer that leaves a request unanswered (libtorrent, asked for more than 16 KiB, says
  // nothing) is dropped after 10 s, and the fetch fails naming why, instead of waiting forever.
  const peer = await PeerConnection.open({ address: { host, port: Number(port) }, infoHash: info.infoHash, peerId: makePeerId(), idleTimeoutMs: 10_000 })
  const asked: number[] = []
  const request = peer.request.bind(peer)
  peer.request = (piece, offset, length, done) => {
    asked.push(length)
    request(piece, offset, length, done)
  }
  try {
    await peer.ready()
    const pieces = map.files.flatMap((f, i) => (f.path.endsWith('zero.img') ? fileSpans(map, i).slice(0, 40) : fileSpans(map, i)))
    let checked = 0
    const d = new Downloader({
      pieces, hashes: info.pieces,
      onPiece: (span, data) => {
        assert.ok(data.equals(expected(map.files[span.file].path, span.fileOffset, span.dataLength)), `piece ${span.piece} of ${map.files[span.file].path}`)
        checked++
      },
    })
    const dropped = new Promise<never>((_, reject) => d.on('peer-done', (_p: PeerConnection, reason: string) => reject(new Error(`${address} dropped: ${reason}`))))
    d.addPeer(peer)
    await Promise.race([d.whenDone(), dropped])
    assert.equal(checked, pieces.length)
    assert.equal(peer.closed, false, peer.closeReason)
  } finally {
    peer.close('test over')
  }
  return asked
}

test('a dsync host is asked for a whole 32 KiB piece in one request; a libtorrent seeder of the same torrent only for 16 KiB blocks', { skip: SKIP, timeout: 180_000 }, async () => {
  const { h, torrent, info } = await bigRepo()
  assert.equal(info.pieceLength, 32 * 1024, 'the repository was meant to have pieces of 32 KiB')
  const expected = (path: string, offset: number, length: number) => {
    if (path.endsWith('zero.img')) return Buffer.alloc(length)
    return readFileSync(join(h.webroot, 'rocky', path)).subarray(offset, offset + length)
  }

  const fromHost = await fetchFrom(`${h.address}:${h.port}`, info, expected)
  assert.equal(Math.max(...fromHost), 32 * 1024, `block lengths asked of the dsync host: ${[...new Set(fromHost)].join(', ')}`)
  // 40 pieces of the big file, one request each, plus the small files' pieces.
  assert.ok(fromHost.filter(l => l === 32 * 1024).length >= 40, `${fromHost.length} requests`)

  const seeder = await startLibtorrentSeeder(torrent, h.webroot, '127.0.17.3', { noCheck: true })
  const fromLibtorrent = await fetchFrom(seeder.address, info, expected)
  assert.equal(Math.max(...fromLibtorrent), STANDARD_BLOCK, `block lengths asked of libtorrent: ${[...new Set(fromLibtorrent)].join(', ')}`)
})
