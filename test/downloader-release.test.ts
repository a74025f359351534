import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { setImmediate as turn } from 'node:timers/promises'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { makePeerId } from '../src/shared/peer-id.js'
import { Downloader } from '../src/swarm/downloader.js'
import { PeerConnection } from '../src/swarm/peer.js'
import { layoutOf } from '../src/sync/torrent-check.js'
import { fileSpans, pieceMap } from '../src/torrent/piece-map.js'
import { readTorrentInfo } from '../src/torrent/read.js'
import { hasLibtorrent, startLibtorrentSeeder } from '../testbed/seeders.js'
import { makeUpstream } from '../testbed/upstream.js'

const SKIP = hasLibtorrent ? false : 'python3-libtorrent is not installed (apt-get install python3-libtorrent)'

// The seeder on 127.0.0.43 with a random port.

setFlagsFromString('--expose_gc')
const gc = runInNewContext('gc') as () => void

test('a finished download lets go of its peers: the connection serves the next download, and nothing it hung on the peer keeps the old one alive', { skip: SKIP, timeout: 60_000 }, async () => {
  const files: Record<string, Buffer | string> = {}
  for (let i = 0; i < 12; i++) files[`pool/main/pkg${i}.deb`] = Buffer.alloc(20_000 + i * 3_001, i + 1)
  files['dists/stable/Release'] = 'Suite: stable\n'
  const up = await makeUpstream(files)
  const seeder = await startLibtorrentSeeder(up.torrent, up.webroot, '127.0.0.43')
  const info = readTorrentInfo(readFileSync(up.torrent))
  const map = pieceMap(layoutOf(info), info.pieceLength)
  const [host, port] = seeder.address.split(':')
  const peer = await PeerConnection.open({ address: { host, port: Number(port) }, infoHash: info.infoHash, peerId: makePeerId() })
  try {
    await peer.ready()
    const hooked = () => ({ close: peer.listenerCount('close'), unchoke: peer.wire.listenerCount('unchoke') })
    const before = hooked()

    // Each download fetches every file of the torrent from the one peer, and holds a buffer
    // of them: what a finished downloader keeps alive is visible as memory, not only as a count.
    const fetchAll = async (): Promise<WeakRef<Downloader>> => {
      const out = map.files.map(f => Buffer.alloc(f.length))
      const d = new Downloader({
        pieces: map.files.flatMap((_, i) => fileSpans(map, i)), hashes: info.pieces,
        onPiece: (span, data) => data.copy(out[span.file], span.fileOffset),
      })
      d.addPeer(peer)
      await d.whenDone()
      map.files.forEach((f, i) => {
        if (i > 0) assert.ok(out[i].equals(readFileSync(join(up.webroot, info.name, f.path))), `${f.path} arrived whole`)
      })
      return new WeakRef(d)
    }
    const first = await fetchAll()
    assert.deepEqual(hooked(), before, 'the finished download took its listeners off the peer')
    const second = await fetchAll()
    assert.deepEqual(hooked(), before, 'the second download took its listeners off the peer too')
    assert.equal(peer.closed, false)
    for (let i = 0; i < 5 && (first.deref() || second.deref()); i++) {
      await turn()
      gc()
    }
    assert.equal(first.deref(), undefined, 'the first downloader is still reachable while its peer lives')
    assert.equal(second.deref(), undefined, 'the second downloader is still reachable while its peer lives')
  } finally {
    peer.close('test over')
  }
})
