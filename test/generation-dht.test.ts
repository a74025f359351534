import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { Dht } from '../src/shared/dht.js'
import { runCli } from '../testbed/cli.js'
import { HOST_PORT, prepareHost, startHost } from '../testbed/host.js'
import { assertSameTree } from '../testbed/same-tree.js'
import { tempDir } from '../testbed/tree.js'

/**
 * BEP 46 round trip on a DHT that exists only on loopback: one bootstrap node in this process,
 * two hosts (the publisher and a mirror re-serving its pulled tree, both putting the record's
 * pre-signed item), and a client that knows nothing but `magnet:?xs=urn:btpk:KEY&s=deb`.
 * No node knows any public address: every DHT is started with the local node as its only
 * bootstrap (an empty list for the bootstrap node itself).
 */
const BOOT = '127.0.3.90'
const A = '127.0.3.91'
const B = '127.0.3.92'
const CLIENT = '127.0.3.93'

function files(): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i < 10; i++) out[`pool/p${i % 2}/pkg${i}.deb`] = `package ${i} `.repeat(500 + i)
  out['dists/stable/Release'] = 'Release\n'
  return out
}

test('BEP 46: a btpk magnet resolves through a loopback-only DHT to hosts serving the signed generation', async () => {
  const boot = await Dht.open({ bootstrap: [], address: BOOT })
  after(() => boot.close())
  const bootAt = `${BOOT}:${boot.raw.address().port}`
  const dhtConf = `dht=true\ndht-bootstrap=${bootAt}\n`

  const hostA = await prepareHost(A, { deb: files() }, dhtConf)
  await startHost(hostA, ['deb'])
  const key = (await hostA.cli('key')).stdout.trim()

  // Host B mirrors A over dtp:// and re-serves the tree with A's record (B's own key signs nothing).
  const hostB = await prepareHost(B, {}, dhtConf)
  const bDir = join(hostB.webroot, 'deb')
  const mirrored = await runCli(['pull', `dtp://${A}:${HOST_PORT}/deb`, bDir, '--key', key])
  assert.equal(mirrored.code, 0, mirrored.stderr)
  writeFileSync(join(hostB.home, 'repos', 'deb.conf'), `repo=deb\nsave=${bDir}\ndsync=true\n`)
  await startHost(hostB, ['deb'])
  // B has a key of its own (made here); the record it serves is still A's.
  assert.notEqual((await hostB.cli('key')).stdout.trim(), key)

  // The hosts put the item and announce the torrent; give the puts a moment to land.
  const magnet = `magnet:?xs=urn:btpk:${key}&s=deb`
  const dest = join(tempDir('dsync-bep46-'), 'mirror')

  let r = await runCli(['--json', 'pull', magnet, dest, '--dht-bootstrap', bootAt, '--bind', CLIENT])
  for (let i = 0; i < 10 && r.code !== 0 && /no DHT item|no host among/.test(r.stderr); i++) {
    await new Promise(resolve => setTimeout(resolve, 500))
    r = await runCli(['--json', 'pull', magnet, dest, '--dht-bootstrap', bootAt, '--bind', CLIENT])
  }
  assert.equal(r.code, 0, r.stderr)
  const summary = JSON.parse(r.stdout.trim().split('\n').pop()!) as { verified: boolean; seq: number }
  assert.equal(summary.verified, true, 'the key in the link is pinned')
  await assertSameTree(join(hostA.webroot, 'deb'), dest)
  assert.match(hostA.log(), /BEP 46 seq \d+.*stored on [1-9]/)

  // With the publisher gone, the name still resolves: the DHT still holds the item, B serves.
  assert.equal((await hostA.cli('stop-service')).code, 0)
  const dest2 = join(tempDir('dsync-bep46-'), 'mirror2')
  const r2 = await runCli(['--json', 'pull', magnet, dest2, '--dht-bootstrap', bootAt, '--bind', CLIENT])
  assert.equal(r2.code, 0, r2.stderr)
  await assertSameTree(join(hostA.webroot, 'deb'), dest2)

  // A key nobody published under: one line, a network error, nothing written.
  const dest3 = join(tempDir('dsync-bep46-'), 'mirror3')
  const r3 = await runCli(['pull', `magnet:?xs=urn:btpk:${'cd'.repeat(32)}&s=deb`, dest3, '--dht-bootstrap', bootAt, '--bind', CLIENT])
  assert.equal(r3.code, 6, r3.stderr)
  assert.match(r3.stderr, /no DHT item for key cdcd/)
})
