import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { DEFAULT_INDEX_FILES } from '../src/config/repo-config.js'
import { pull } from '../src/sync/pull.js'
import { assertSameTree } from '../testbed/same-tree.js'
import { sharedTree, startSharedHost, type SharedHost } from '../testbed/shared-hosts.js'
import { tempDir } from '../testbed/tree.js'

// Debian's opentracker as the only tracker: hosts announce to it, the client finds them through
// it, over UDP and over HTTP. Tracker on 127.0.14.30, hosts on 127.0.14.31-34.
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

for (const [scheme, first] of [['udp', 31], ['http', 33]] as const) {
  test(`opentracker over ${scheme.toUpperCase()} as the only tracker: two hosts announce, a client given the .torrent finds both`, { timeout: 90_000 }, async t => {
    if (!existsSync(OPENTRACKER)) return t.skip(`${OPENTRACKER} missing (apt install opentracker)`)
    // The announce URL goes into the torrent at gendsync: the tracker's port comes first.
    const tracker = await startOpentracker()
    t.after(() => tracker.child.kill('SIGKILL'))
    const url = scheme === 'udp' ? `udp://${TRACKER_ADDRESS}:${tracker.port}` : `http://${TRACKER_ADDRESS}:${tracker.port}/announce`
    const files: Record<string, Buffer> = {}
    for (let i = 0; i < 4; i++) files[`pool/p${i}.deb`] = Buffer.alloc(MB, i + 1)
    const tree = await sharedTree(files, 'rocky', `tracker=${url}\n`)
    await tracker.allow(tree.infoHash)
    // Capped so that the pull lasts long enough for the client to use both hosts.
    const hosts = [
      await startSharedHost(tree, `127.0.14.${first}`, 'upload-limit=8\n'),
      await startSharedHost(tree, `127.0.14.${first + 1}`, 'upload-limit=8\n'),
    ]
    for (const h of hosts) await announced(h, scheme)

    // No --peer, no dtp:// host: the .torrent's tracker is the only way to a host.
    const dest = join(tempDir(), 'mirror')
    const result = await pull({ sources: [tree.torrent], dest, indexFiles: DEFAULT_INDEX_FILES })
    assert.deepEqual(Object.keys(result.bytesPerHost).sort(), hosts.map(h => h.peer).sort(), JSON.stringify(result.bytesPerHost))
    await assertSameTree(join(tree.webroot, tree.repo), dest)
  })
}
