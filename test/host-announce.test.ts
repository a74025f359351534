import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { HOST_PORT, prepareHost } from '../testbed/host.js'

interface TrackerPeer { ip: string; port: number; complete: boolean }

test('a host announces itself as a seeder to its torrent\'s tracker from its listen address', { timeout: 120_000 }, async () => {
  // A real bittorrent-tracker server on loopback; the announce must come from 127.0.3.120.
  const specifier = 'bittorrent-tracker/server'
  const { default: Server } = (await import(specifier)) as { default: new (o: object) => {
    listen(port: number, host: string, cb: () => void): void
    http: { address(): { port: number } }
    torrents: Record<string, { complete: number; announce(p: object, cb: (e: Error | null, r: { peers: TrackerPeer[] }) => void): void }>
    close(cb?: () => void): void
  } }
  const tracker = new Server({ udp: false, http: true, ws: false, stats: false })
  await new Promise<void>(resolve => tracker.listen(0, '127.0.3.150', resolve))
  try {
    const url = `http://127.0.3.150:${tracker.http.address().port}/announce`
    const host = await prepareHost('127.0.3.120', { rocky: { 'a.bin': randomBytes(50_000) } }, `tracker=${url}\n`)
    const first = await host.cli('service')
    assert.equal(first.code, 0, first.stderr)
    writeFileSync(join(host.home, 'dtp', 'list.conf'), '/rocky\n')
    assert.equal((await host.cli('reload')).code, 0)
    const infoHash = host.genInfo.rocky.infoHash
    const deadline = Date.now() + 20_000
    while (!tracker.torrents[infoHash] && Date.now() < deadline) await new Promise(r => setTimeout(r, 100))
    const swarm = tracker.torrents[infoHash]
    assert.ok(swarm, 'the tracker never heard of the repo')
    assert.equal(swarm.complete, 1, 'announced as a seeder')
    const peers = await new Promise<TrackerPeer[]>((resolve, reject) => swarm.announce({
      event: 'started', numwant: 10, compact: -1, peer_id: 'probe', ip: '127.0.0.1', port: 1, addr: '127.0.0.1:1', type: 'http', left: 1,
    }, (err, r) => (err ? reject(err) : resolve(r.peers))))
    const seeder = peers.find(p => p.complete)
    assert.deepEqual({ ip: seeder?.ip, port: seeder?.port }, { ip: '127.0.3.120', port: HOST_PORT })
    // The tracker records the peer before it answers; the host logs once the answer is in.
    while (!/announce to .*: ok/.test(host.log()) && Date.now() < deadline + 10_000) await new Promise(r => setTimeout(r, 100))
    assert.match(host.log(), /announce to .*: ok/)
    assert.equal((await host.cli('stop-service')).code, 0)
  } finally {
    await new Promise<void>(resolve => tracker.close(() => resolve()))
  }
})
