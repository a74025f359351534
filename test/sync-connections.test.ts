import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { runCli } from '../testbed/cli.js'
import { prepareHost, type TestHost } from '../testbed/host.js'
import { assertSameTree, settleDirMtimes } from '../testbed/same-tree.js'
import { makeHome, tempDir } from '../testbed/tree.js'

// Real `dsync service` hosts on 127.0.21.x (no other test file uses that range).

function tree(): Record<string, Buffer> {
  const files: Record<string, Buffer> = {}
  for (let i = 0; i < 24; i++) files[`pool/pkg${i}.deb`] = Buffer.alloc(40_000 + i * 997, i + 1)
  return files
}

/** A host with its own copy of the tree, serving it, logging JSON so its peer events can be read. */
async function jsonHost(address: string): Promise<TestHost> {
  const h = await prepareHost(address, { rocky: tree() })
  settleDirMtimes(join(h.webroot, 'rocky'))
  assert.equal((await h.cli('gendsync')).code, 0)
  assert.equal((await h.cli('--json', 'service')).code, 0)
  writeFileSync(join(h.home, 'dtp', 'list.conf'), '/rocky\n')
  const r = await h.cli('reload')
  assert.equal(r.code, 0, r.stderr)
  return h
}

/** Peer-wire connections a host's log shows (one `peer` event per accepted connection). */
function peerEvents(h: TestHost): number {
  return h.log().split('\n').filter(l => l.startsWith('{') && (JSON.parse(l) as { event: string }).event === 'peer').length
}

test("a repo's connections= limits dsync sync's peer connections (no CLI default shadows it)", { timeout: 180_000 }, async () => {
  const hosts: TestHost[] = []
  for (let i = 2; i <= 5; i++) hosts.push(await jsonHost(`127.0.21.${i}`))
  const down = makeHome(tempDir(), {})
  const save = join(down.webroot, 'rocky')
  const urls = hosts.map(h => `dtp://${h.address}/rocky`).join(', ')
  writeFileSync(join(down.home, 'repos/rocky.conf'), `repo=rocky\nsave=${save}\ndsync-url=${urls}\nconnections=2\nretries=0\n`)
  const r = await runCli(['--home', down.home, '--json', 'sync', 'rocky'])
  assert.equal(r.code, 0, r.stderr)
  await assertSameTree(join(hosts[0].webroot, 'rocky'), save)
  // The client knows four hosts from the start; with room for 50 connections it dials all
  // four at once. connections=2 lets two of them ever see a peer connection.
  const perHost = hosts.map(peerEvents)
  assert.ok(perHost.filter(n => n > 0).length <= 2, `peer connections per host: ${perHost.join(', ')}`)
  const summary = JSON.parse(r.stdout.trim().split('\n').pop()!) as { bytesPerHost: Record<string, number> }
  assert.ok(Object.keys(summary.bytesPerHost).length <= 2, JSON.stringify(summary.bytesPerHost))
  assert.ok(readFileSync(join(save, '.dsync', 'data.dsync')).length > 0)
})
