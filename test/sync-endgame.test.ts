import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { hasLibtorrent, startLibtorrentSeeder } from '../testbed/seeders.js'
import { assertSameTree } from '../testbed/same-tree.js'
import { StallProxy } from '../testbed/stall-proxy.js'
import { stagingFiles, tempDir } from '../testbed/tree.js'
import { makeUpstream, pullCli } from '../testbed/upstream.js'

const SKIP = hasLibtorrent ? false : 'python3-libtorrent is not installed (apt-get install python3-libtorrent)'

// Addresses 127.0.0.2-3 with random ports (as test/sync.test.ts), the proxy on 127.0.0.31.

function repo(): Record<string, Buffer | string> {
  const files: Record<string, Buffer | string> = {}
  for (let i = 0; i < 40; i++) files[`pool/main/${i % 4}/pkg${i}.deb`] = Buffer.alloc(60_000 + ((i * 7919) % 90_000), i + 1)
  files['dists/stable/Release'] = 'Suite: stable\n'
  return files
}

test('a host that hangs mid-reply costs only time: the endgame takes its pieces from another host before the hung one times out', { skip: SKIP, timeout: 120_000 }, async () => {
  const up = await makeUpstream(repo())
  // Both capped at 1 MB/s so the ~4 MB transfer outlasts connection set-up and both hosts get requests.
  const [steady, hanging] = await Promise.all(['127.0.0.2', '127.0.0.3'].map(h => startLibtorrentSeeder(up.torrent, up.webroot, h, { uploadLimit: 1_000_000 })))
  const [host, port] = hanging.address.split(':')
  const proxy = await StallProxy.start('127.0.0.31', { host, port: Number(port) })
  // After the peer-wire handshake, 300 KB of the hanging host's answers get through, then
  // nothing: the socket stays open with the client's requests to it unanswered.
  proxy.match = first => first[0] === 0x13
  proxy.stallAfter = 300_000
  let stalledAt = -1
  proxy.once('stalled', (n: number) => (stalledAt = n))

  const dest = join(tempDir(), 'mirror')
  const r = await pullCli(up.torrent, dest, [steady.address, proxy.address])
  assert.equal(r.code, 0, r.stderr)
  await assertSameTree(up.save, dest)
  assert.deepEqual(stagingFiles(dest), [])
  // The fault happened mid-transfer: the hanging host held replies it had begun.
  assert.ok(stalledAt > 0, 'the proxy never held a reply: the hanging host got no requests')
  // The pull did not wait for the client's 30 s request timeout to drop the hung peer: the
  // steady host was asked for the pieces still in flight on the hung connection.
  assert.doesNotMatch(r.stderr, /dropped peer 127\.0\.0\.31/, r.stderr)
  const total = Object.values(r.summary!.bytesPerHost).reduce((a, b) => a + b, 0)
  assert.ok((r.summary!.bytesPerHost[steady.address] ?? 0) > 0, JSON.stringify(r.summary!.bytesPerHost))
  assert.ok(total >= 4_000_000, `bytes received ${total}`)
})
