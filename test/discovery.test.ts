import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { get } from 'node:http'
import { connect } from 'node:net'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { DEFAULT_INDEX_FILES } from '../src/config/repo-config.js'
import { Dht } from '../src/shared/dht.js'
import { pull } from '../src/sync/pull.js'
import { HOST_PORT } from '../testbed/host.js'
import { assertSameTree } from '../testbed/same-tree.js'
import { sharedTree, startSharedHost, type SharedHost } from '../testbed/shared-hosts.js'
import { tempDir } from '../testbed/tree.js'

// Discovery without a tracker: the dtp:// info's host list, ut_pex, and a loopback-only DHT.
// Hosts on 127.0.14.41-47, the client on 127.0.14.45, the DHT bootstrap node on 127.0.14.50.
const CLIENT = '127.0.14.45'
const MB = 1 << 20

function files(n: number): Record<string, Buffer | string> {
  const out: Record<string, Buffer | string> = {}
  for (let i = 0; i < n; i++) out[`pool/p${i}.deb`] = Buffer.alloc(MB, i + 1)
  out['dists/stable/InRelease'] = 'Suite: stable\n'
  return out
}

/** GET /REPO/info.json from CLIENT (hosts with an allow list see that address). */
function hostsNamedBy(h: SharedHost, repo: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    get({ host: h.address, port: HOST_PORT, path: `/${repo}/info.json`, localAddress: CLIENT, agent: false }, res => {
      let body = ''
      res.on('data', c => (body += c))
      res.on('end', () => resolve((JSON.parse(body) as { hosts: string[] }).hosts.sort()))
    }).on('error', reject)
  })
}

/** Connects to a host as a peer and sends one ut_pex message naming `peers`. */
async function tellOverPex(host: string, infoHash: string, peers: { host: string; port: number }[]): Promise<void> {
  const { pexExtension } = await import('../src/swarm/pex.js')
  const Wire = (await import('bittorrent-protocol')).default
  const socket = connect({ host, port: HOST_PORT, localAddress: CLIENT })
  const wire = new Wire('tcpOutgoing')
  wire.use(pexExtension(() => peers, () => undefined))
  socket.pipe(wire).pipe(socket)
  socket.on('error', () => undefined)
  wire.handshake(infoHash, randomBytes(20), { dht: false, fast: true })
  // Our extended handshake goes out with the host's; the message follows the host's handshake.
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no extended handshake from the host')), 10_000)
    wire.once('extended', () => {
      clearTimeout(timer)
      resolve()
    })
  })
  await sleep(300)
  socket.destroy()
}

test('one dtp:// address, no tracker: the info names a second host, its ut_pex a third; all three serve; learned hosts pass the firewall', { timeout: 90_000 }, async () => {
  const tree = await sharedTree(files(6))
  const [A, B, C] = ['127.0.14.41', '127.0.14.42', '127.0.14.43']
  // Capped (1 MB/s each) so the pull lasts until every host is found. A names B (peers=); B
  // names C; C names nobody, and its firewall lets in the client and A but not B.
  const hostA = await startSharedHost(tree, A, `upload-limit=8\npeers=${B}\n`)
  const hostB = await startSharedHost(tree, B, `upload-limit=8\npeers=${C}:${HOST_PORT}\n`)
  const hostC = await startSharedHost(tree, C, 'upload-limit=8\n', '', { 'firewall.conf': `allow=${CLIENT}, ${A}\n` })
  assert.deepEqual(await hostsNamedBy(hostA, tree.repo), [`${B}:${HOST_PORT}`])

  const dest = join(tempDir(), 'mirror')
  const result = await pull({ sources: [tree.url(hostA)], dest, indexFiles: DEFAULT_INDEX_FILES, localAddress: CLIENT })
  assert.deepEqual(Object.keys(result.bytesPerHost).sort(), [hostA.peer, hostB.peer, hostC.peer].sort(), JSON.stringify(result.bytesPerHost))
  for (const h of [hostA, hostB, hostC]) assert.ok(result.bytesPerHost[h.peer] > 0, `${h.peer} served nothing`)
  await assertSameTree(join(tree.webroot, tree.repo), dest)

  // C heard of A and B from the client over ut_pex; only A passes C's firewall.conf. C checks A
  // with a handshake before listing it, which may still be under way when the pull ends.
  const deadline = Date.now() + 10_000
  let named: string[] = []
  while (Date.now() < deadline && (named = await hostsNamedBy(hostC, tree.repo)).length === 0) await sleep(200)
  assert.deepEqual(named, [`${A}:${HOST_PORT}`])

  // A peer names an address where nothing answers: A checks it with a handshake first and never lists it.
  const before = await hostsNamedBy(hostA, tree.repo)
  await tellOverPex(A, tree.infoHash, [{ host: '127.0.14.49', port: HOST_PORT }])
  await sleep(1500)
  assert.deepEqual(await hostsNamedBy(hostA, tree.repo), before)
})

test('ut_pex: a host the client connects to after the others hears of them when they answer, not a minute later', { timeout: 60_000 }, async () => {
  const { Swarm } = await import('../src/swarm/swarm.js')
  const tree = await sharedTree(files(1), 'early')
  // E is reached first; L (late) answers only after E's connection is up. E lets in the client and L.
  const [E, L] = ['127.0.14.51', '127.0.14.52']
  const hostE = await startSharedHost(tree, E, '', '', { 'firewall.conf': `allow=${CLIENT}, ${L}\n` })
  const hostL = await startSharedHost(tree, L, '')
  const swarm = new Swarm({ infoHash: tree.infoHash, peerId: randomBytes(20).toString('hex'), maxConnections: 4, localAddress: CLIENT })
  after(() => swarm.close())
  const connected = (label: string) => new Promise<void>(resolve => {
    const on = (p: { label: string }) => { if (p.label === label) { swarm.off('peer', on); resolve() } }
    swarm.on('peer', on)
  })
  const upE = connected(hostE.peer)
  swarm.add({ host: E, port: HOST_PORT })
  await upE
  // E's first ut_pex message from the client named nobody (no other host was connected yet).
  const upL = connected(hostL.peer)
  swarm.add({ host: L, port: HOST_PORT })
  await upL
  // E checks L with a handshake, then lists it: well inside the minute of BEP 11's resend.
  const deadline = Date.now() + 10_000
  let named: string[] = []
  while (Date.now() < deadline && (named = await hostsNamedBy(hostE, tree.repo)).length === 0) await sleep(200)
  assert.deepEqual(named, [hostL.peer])
})

test('dht=true on a loopback-only DHT: the client finds a host that no other host names', { timeout: 90_000 }, async () => {
  // Every node starts from the local bootstrap node only (the bootstrap node from none).
  const boot = await Dht.open({ bootstrap: [], address: '127.0.14.50' })
  after(() => boot.close())
  const bootAt = `127.0.14.50:${boot.raw.address().port}`
  const tree = await sharedTree(files(4), 'alma')
  // The dtp:// source is slow (2 Mbit/s) and names nobody; the DHT host is not capped.
  const named = await startSharedHost(tree, '127.0.14.46', 'upload-limit=2\n')
  const hidden = await startSharedHost(tree, '127.0.14.47', `dht=true\ndht-bootstrap=${bootAt}\n`)
  const deadline = Date.now() + 30_000
  while (!/announce to dht: ok/.test(hidden.log())) {
    if (Date.now() > deadline) assert.fail(`the DHT host never announced:\n${hidden.log()}`)
    await sleep(200)
  }
  assert.deepEqual(await hostsNamedBy(named, tree.repo), [])

  const dest = join(tempDir(), 'mirror')
  const result = await pull({
    sources: [tree.url(named)], dest, indexFiles: DEFAULT_INDEX_FILES, localAddress: CLIENT, dht: true, dhtBootstrap: [bootAt],
  })
  assert.ok((result.bytesPerHost[hidden.peer] ?? 0) > 0, `the DHT host served nothing: ${JSON.stringify(result.bytesPerHost)}`)
  await assertSameTree(join(tree.webroot, tree.repo), dest)
})

test('ut_pex messages: round trip of v4 and v6, at most 50 peers taken, nonsense and malformed input dropped', async () => {
  const { decodePex, encodePex } = await import('../src/swarm/pex.js')
  const bencode = (await import('bencode')).default
  const peers = [{ host: '127.0.14.41', port: 47921 }, { host: '2001:db8:0:0:0:0:0:7', port: 6881 }]
  assert.deepEqual(decodePex(encodePex(peers)), peers)
  const many = Array.from({ length: 80 }, (_, i) => ({ host: `10.0.${i >> 8}.${(i & 255) + 1}`, port: 1000 + i }))
  assert.equal(decodePex(encodePex(many)).length, 50)
  const junk = Buffer.concat([Buffer.from([0, 0, 0, 0, 0x1a, 0xe1]), Buffer.from([10, 0, 0, 1, 0, 0]), Buffer.from([224, 0, 0, 1, 0, 80]), Buffer.from([10, 0, 0, 2, 0, 80, 9])])
  assert.deepEqual(decodePex(bencode.encode({ added: junk })), [{ host: '10.0.0.2', port: 80 }])
  assert.deepEqual(decodePex(Buffer.from('d5:added')), [])
  assert.deepEqual(decodePex(bencode.encode([1, 2])), [])
})
