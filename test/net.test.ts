import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { runCli } from '../testbed/cli.js'
import { assertSameTree, settleDirMtimes } from '../testbed/same-tree.js'
import { tempDir, writeTree } from '../testbed/tree.js'
import { dsyncIn, makeNetHome, pullSummary, startNetHost, type NetHost } from '../testbed/net/dsync.js'
import { NetBed, netnsUnavailable } from '../testbed/net/netns.js'

// Real `dsync service` hosts in their own network namespaces, each uplink capped by tc tbf,
// the client in another namespace: what the hosts see are real, distinct source addresses,
// and a link can be cut under a running transfer. Needs root; skips otherwise.

const unavailable = netnsUnavailable()
const RATE_MBIT = 8

let bed: NetBed
let save: string
let hosts: NetHost[]

function mirrorTree(): Record<string, Buffer | string> {
  const files: Record<string, Buffer | string> = {}
  // 8 MiB: at 8 Mbit/s per host the transfer lasts a few seconds, long enough to cut a link in it.
  for (let i = 0; i < 16; i++) files[`pool/main/p${i % 4}/pkg${i}_1.0_amd64.deb`] = randomBytes(512 * 1024 - i * 1000)
  files['dists/stable/InRelease'] = 'Suite: stable\n'
  return files
}

// Made here, not in before(): tempDir registers an after() hook, and one registered from
// inside a hook ran as soon as that hook ended, deleting the hosts' homes under them.
const base = tempDir('dsync-net-')

before(async () => {
  if (unavailable) return
  save = join(base, 'web', 'mirror')
  writeTree(save, mirrorTree())
  settleDirMtimes(save)
  bed = NetBed.create({ hosts: 4, clients: 2, hostRateMbit: RATE_MBIT })
  // h1..h3 share one folder (data.dsync lives in it); h4 only lets client c1 in.
  hosts = bed.hosts.map((node, i) => makeNetHome(base, node, save, i === 3 ? `allow=${bed.clients[0].address}\n` : undefined))
  const g = await runCli(['--home', hosts[0].home, 'gendsync'])
  assert.equal(g.code, 0, g.stderr)
  for (const h of hosts) await startNetHost(bed, h)
}, { timeout: 120_000 })

after(() => bed?.destroy())

test('a host whose link goes down mid-transfer does not stop the sync', { skip: unavailable ?? false, timeout: 180_000 }, async t => {
  const [h1, h2, h3] = hosts
  const dest = join(base, `dest-${randomBytes(4).toString('hex')}`)
  let cutAt: { bytesDone: number; bytesTotal: number } | undefined
  const r = await dsyncIn(bed, bed.clients[0], ['--json', 'pull', `dtp://${h1.node.address}/mirror`, dest, '--peer', h2.peer, '--peer', h3.peer], {
    timeoutMs: 150_000,
    onLine: line => {
      const e = JSON.parse(line) as { event: string; phase?: string; bytesDone: number; bytesTotal: number }
      if (!cutAt && e.event === 'progress' && e.phase === 'files' && e.bytesDone >= e.bytesTotal * 0.3) {
        cutAt = { bytesDone: e.bytesDone, bytesTotal: e.bytesTotal }
        bed.linkDown(h2.node)
      }
    },
  })
  assert.equal(r.code, 0, r.stderr)
  assert.ok(cutAt && cutAt.bytesDone < cutAt.bytesTotal, `the link was cut during the transfer (${JSON.stringify(cutAt)})`)
  const s = pullSummary(r.stdout)
  assert.ok(s, r.stdout)
  const per = s.bytesPerHost
  // h2 served part of the data before its link went down, the others the rest.
  assert.ok((per[h2.peer] ?? 0) > 0, `h2 sent something before the cut: ${JSON.stringify(per)}`)
  assert.ok((per[h2.peer] ?? 0) < s.bytesReceived, JSON.stringify(per))
  assert.equal(Object.values(per).reduce((a, b) => a + b, 0), s.bytesReceived)
  t.diagnostic(`cut ${h2.peer} at ${cutAt.bytesDone}/${cutAt.bytesTotal} B; pull took ${r.seconds.toFixed(1)} s; per host ${JSON.stringify(per)}`)
  await assertSameTree(save, dest)
})

test("firewall.conf is enforced against the client's real namespace address", { skip: unavailable ?? false, timeout: 120_000 }, async () => {
  const h4 = hosts[3]
  const [allowed, denied] = bed.clients
  const refused = await dsyncIn(bed, denied, ['pull', `dtp://${h4.node.address}/mirror`, join(base, 'dest-refused')], { timeoutMs: 100_000 })
  assert.notEqual(refused.code, 0, refused.stdout)
  assert.match(refused.stderr, new RegExp(h4.node.address.replace(/\./g, '\\.')))
  assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr)
  assert.match(h4.log(), new RegExp(`refused ${denied.address.replace(/\./g, '\\.')}\\b`))

  const dest = join(base, `dest-${randomBytes(4).toString('hex')}`)
  const ok = await dsyncIn(bed, allowed, ['--json', 'pull', `dtp://${h4.node.address}/mirror`, dest], { timeoutMs: 100_000 })
  assert.equal(ok.code, 0, ok.stderr)
  assert.deepEqual(Object.keys(pullSummary(ok.stdout)!.bytesPerHost), [h4.peer])
  await assertSameTree(save, dest)
  assert.doesNotMatch(h4.log(), new RegExp(`refused ${allowed.address.replace(/\./g, '\\.')}\\b`))
})
