import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { prepareHost, startHost } from '../testbed/host.js'
import { startPairProxy } from '../testbed/pair-proxy.js'
import { assertSameTree } from '../testbed/same-tree.js'
import { stagingFiles, tempDir } from '../testbed/tree.js'
import { pullCli } from '../testbed/upstream.js'

// Real `dsync service` hosts on 127.0.24.x; the cutting proxy on 127.0.24.9.

const KiB = 1024

function tree(files: number, bytes: number): Record<string, Buffer | string> {
  const out: Record<string, Buffer | string> = {}
  for (let i = 0; i < files; i++) out[`pool/main/pkg${i}.deb`] = Buffer.alloc(bytes + i * 517, i + 1)
  out['dists/stable/InRelease'] = 'Suite: stable\n'
  return out
}

test('a host with a 1 s idle timeout serving at 2 Mbit/s: the client\'s keep-alives hold the connection through its waits, the pull completes', { timeout: 120_000 }, async () => {
  // 2 MiB at 2 Mbit/s: ~8 s with the client's pipeline full, so the client sends nothing for
  // seconds at a time (its next requests wait for 256 KiB to land: ~1 s at this rate, and the
  // last requests go out with the whole rest of the pull in flight). Without keep-alives the
  // host cuts connections after 1-2 s silent: its log says so, which is what fails this test (the
  // pull itself may get through, each connection having delivered pieces that reset its attempts).
  const h = await prepareHost('127.0.24.2', { rocky: tree(16, 128 * KiB) }, 'idle-timeout=1\nupload-limit=2\n')
  await startHost(h, ['rocky'])
  const dest = join(tempDir(), 'mirror')
  const r = await pullCli('dtp://127.0.24.2/rocky', dest, [])
  assert.equal(r.code, 0, r.stderr)
  await assertSameTree(join(h.webroot, 'rocky'), dest)
  assert.deepEqual(stagingFiles(dest), [])
  assert.doesNotMatch(h.log(), /nothing received for/, 'the host closed a connection as idle')
})

/**
 * A TCP proxy that cuts each connection once it has passed `cutAfter` bytes of the host's
 * answers: a host that restarts, or a path that drops connections, again and again over a pull.
 */
async function cuttingProxy(listenHost: string, target: { host: string; port: number }, cutAfter: number): Promise<{ address: string; cuts: () => number }> {
  let cuts = 0
  const address = await startPairProxy(listenHost, target, (client, upstream, end) => {
    let passed = 0
    client.on('data', (b: Buffer) => upstream.write(b))
    upstream.on('data', (b: Buffer) => {
      client.write(b)
      passed += b.length
      if (passed >= cutAfter && !client.destroyed) {
        cuts++
        end()
      }
    })
  })
  return { address, cuts: () => cuts }
}

test('connections cut again and again after carrying blocks: the peer is dialled again each time (attempts count failures in a row), the pull completes', { timeout: 120_000 }, async () => {
  // 3 MiB through a proxy that cuts each connection after 512 KiB of answers: 6 or more
  // connections to the only peer, where three failed dials in a row give a peer up.
  const h = await prepareHost('127.0.24.3', { rocky: tree(24, 128 * KiB) })
  await startHost(h, ['rocky'])
  const proxy = await cuttingProxy('127.0.24.9', { host: h.address, port: h.port }, 512 * KiB)
  const dest = join(tempDir(), 'mirror')
  // The torrent from the host's webroot: the only way to the host's pieces is the proxy.
  const r = await pullCli(join(h.webroot, 'rocky', '.dsync', 'rocky.torrent'), dest, [proxy.address])
  assert.equal(r.code, 0, r.stderr)
  await assertSameTree(join(h.webroot, 'rocky'), dest)
  assert.ok(proxy.cuts() >= 4, `only ${proxy.cuts()} connections were cut`)
})
