import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { prepareHost, startHost } from '../testbed/host.js'
import { startPairProxy } from '../testbed/pair-proxy.js'
import { assertSameTree } from '../testbed/same-tree.js'
import { tempDir } from '../testbed/tree.js'
import { pullCli } from '../testbed/upstream.js'

// A real `dsync service` on 127.0.24.30; in front of it, a proxy on 127.0.24.31 that holds
// the answer to the .torrent's GET for HOLD_MS and notes when peer-wire handshakes pass.

const HOLD_MS = 1500

interface Seen { torrentAsked?: number; torrentReleased?: number; handshakes: number[] }

/** Bytes pass unchanged both ways; the host's answer to `GET /rocky/rocky.torrent` waits HOLD_MS. */
async function holdingProxy(listenHost: string, target: { host: string; port: number }): Promise<{ address: string; seen: Seen }> {
  const seen: Seen = { handshakes: [] }
  const address = await startPairProxy(listenHost, target, (client, upstream) => {
    let holdUntil = 0
    let held: Buffer[] = []
    client.on('data', (b: Buffer) => {
      if (b[0] === 0x13) seen.handshakes.push(Date.now())
      if (b.toString('latin1', 0, 30).startsWith('GET /rocky/rocky.torrent')) {
        seen.torrentAsked = Date.now()
        holdUntil = Date.now() + HOLD_MS
        setTimeout(() => {
          seen.torrentReleased = Date.now()
          for (const c of held) client.write(c)
          held = []
        }, HOLD_MS)
      }
      upstream.write(b)
    })
    upstream.on('data', (b: Buffer) => {
      if (Date.now() < holdUntil) held.push(b)
      else client.write(b)
    })
  })
  return { address, seen }
}

function tree(): Record<string, Buffer | string> {
  const files: Record<string, Buffer | string> = {}
  for (let i = 0; i < 20; i++) files[`pool/main/pkg${i}.deb`] = Buffer.alloc(3000 + i * 997, i + 1)
  files['dists/stable/InRelease'] = 'Suite: stable\n'
  return files
}

test('a bootstrap dials its hosts while the .torrent is still on its way (the resolve stage opens the swarm), and completes', { timeout: 120_000 }, async () => {
  const h = await prepareHost('127.0.24.30', { rocky: tree() })
  await startHost(h, ['rocky'])
  const proxy = await holdingProxy('127.0.24.31', { host: h.address, port: h.port })
  const dest = join(tempDir(), 'mirror')
  const r = await pullCli(`dtp://${proxy.address}/rocky`, dest, [])
  assert.equal(r.code, 0, r.stderr)
  await assertSameTree(join(h.webroot, 'rocky'), dest)
  const { torrentAsked, torrentReleased, handshakes } = proxy.seen
  assert.ok(torrentAsked !== undefined && torrentReleased !== undefined, 'the .torrent never went through the proxy')
  // Dialled while the .torrent was held: not after it arrived, as when the full route opened the swarm.
  assert.ok(handshakes.some(t => t < torrentReleased), `handshakes at ${handshakes.map(t => t - torrentAsked).join(', ')} ms after the .torrent's GET, its answer held ${HOLD_MS} ms`)
})
