import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { DEFAULT_INDEX_FILES } from '../src/config/repo-config.js'
import { pull } from '../src/sync/pull.js'
import { assertSameTree } from '../testbed/same-tree.js'
import { sharedTree, startSharedHost, type SharedHost } from '../testbed/shared-hosts.js'
import { tempDir } from '../testbed/tree.js'

// Debian's opentracker as the only tracker: hosts announce to it, the client finds them through
// it, over UDP and over HTTP. Tracker on 127.0.14.30, hosts on 127.0.14.31-32.
const OPENTRACKER = '/usr/bin/opentracker'
const TRACKER_ADDRESS = '127.0.14.30'
const MB = 1 << 20

interface Opentracker {
  port: number
  child: ChildProcess
  /** Debian builds opentracker with a whitelist: SIGHUP makes it re-read the file. */
  allow(infoHash: string): Promise<void>
}

/** Starts opentracker (whitelist empty for now) on a free port. */
async function startOpentracker(): Promise<Opentracker> {
  const dir = tempDir('dsync-ot-')
  // opentracker drops to nobody after start: a SIGHUP reload must still read the list.
  chmodSync(dir, 0o755)
  const list = join(dir, 'whitelist.txt')
  writeFileSync(list, '')
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 30000)
    const child = spawn(OPENTRACKER, ['-i', TRACKER_ADDRESS, '-p', String(port), '-P', String(port), '-d', dir, '-w', 'whitelist.txt', '-u', 'nobody'],
      { cwd: dir, stdio: 'ignore' })
    await sleep(500)
    if (child.exitCode === null) {
      return {
        port, child,
        async allow(infoHash: string) {
          writeFileSync(list, `${infoHash}\n`)
          child.kill('SIGHUP')
          await sleep(300)
        },
      }
    }
  }
  throw new Error('opentracker would not start (ports busy?)')
}

async function announced(host: SharedHost, scheme: string): Promise<void> {
  const deadline = Date.now() + 20_000
  const ok = new RegExp(`announce to ${scheme}://\\S+: ok`)
  while (!ok.test(host.log())) {
    if (Date.now() > deadline) assert.fail(`${host.address} did not announce to the ${scheme} tracker:\n${host.log()}`)
    await sleep(100)
  }
}

test('opentracker as the only tracker: two hosts announce over UDP and HTTP; a client given the .torrent finds both through either', { timeout: 120_000 }, async t => {
  if (!existsSync(OPENTRACKER)) return t.skip(`${OPENTRACKER} missing (apt install opentracker)`)
  // The announce URLs go into the torrent at gendsync: the tracker's port comes first.
  const tracker = await startOpentracker()
  // Stopped after the hosts (their after hooks come first): a stopping host says 'stopped' to
  // it, and a dead UDP tracker would make each wait for the announce timeout.
  let hostsStarted = false
  t.after(() => hostsStarted || tracker.child.kill('SIGKILL'))
  const udp = `udp://${TRACKER_ADDRESS}:${tracker.port}`
  const http = `http://${TRACKER_ADDRESS}:${tracker.port}/announce`
  const files: Record<string, Buffer> = {}
  for (let i = 0; i < 4; i++) files[`pool/p${i}.deb`] = Buffer.alloc(MB, i + 1)
  const tree = await sharedTree(files, 'rocky', `tracker=${udp}, ${http}\n`)
  await tracker.allow(tree.infoHash)
  // Capped so that each pull lasts long enough for the client to use both hosts.
  const hosts = [
    await startSharedHost(tree, '127.0.14.31', 'upload-limit=8\n'),
    await startSharedHost(tree, '127.0.14.32', 'upload-limit=8\n'),
  ]
  hostsStarted = true
  after(() => tracker.child.kill('SIGKILL'))
  for (const h of hosts) {
    await announced(h, 'udp')
    await announced(h, 'http')
  }
  // No --peer, no dtp:// host: the tracker is the only way to a host; one client asks over
  // UDP only, the other over HTTP only (a tracker given to pull replaces the torrent's).
  for (const url of [udp, http]) {
    const dest = join(tempDir(), 'mirror')
    const result = await pull({ sources: [tree.torrent], dest, trackers: [url], indexFiles: DEFAULT_INDEX_FILES })
    assert.deepEqual(Object.keys(result.bytesPerHost).sort(), hosts.map(h => h.peer).sort(), `${url}: ${JSON.stringify(result.bytesPerHost)}`)
    await assertSameTree(join(tree.webroot, tree.repo), dest)
  }
})
