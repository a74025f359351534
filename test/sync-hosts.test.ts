import assert from 'node:assert/strict'
import { mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { prepareHost, startHost, type TestHost } from '../testbed/host.js'
import { runCli } from '../testbed/cli.js'
import { assertSameTree, settleDirMtimes } from '../testbed/same-tree.js'
import { OLD_MTIME, tempDir } from '../testbed/tree.js'
import { pullCli } from '../testbed/upstream.js'

// Client tests against real `dsync service` daemons. Addresses 127.0.5.x: other test files
// use 127.0.0.x (libtorrent seeders) and 127.0.3.x (host tests).

function tree(): Record<string, Buffer | string> {
  const files: Record<string, Buffer | string> = {}
  for (let i = 0; i < 40; i++) files[`pool/main/${i % 4}/pkg${i}.deb`] = Buffer.alloc(2000 + ((i * 7919) % 60_000), i + 1)
  files['dists/stable/InRelease'] = 'Suite: stable\n'
  return files
}

/** `count` hosts, each with its own copy of the same tree, made independently. */
async function hosts(first: number, count: number, motd?: string): Promise<TestHost[]> {
  const out: TestHost[] = []
  for (let i = 0; i < count; i++) {
    const h = await prepareHost(`127.0.5.${first + i}`, { rocky: tree() })
    settleDirMtimes(join(h.webroot, 'rocky'))
    const g = await h.cli('--json', 'gendsync')
    assert.equal(g.code, 0, g.stderr)
    h.genInfo.rocky = JSON.parse(g.stdout)
    if (motd) {
      // service keeps dtp/ files that exist: the motd is configured before the first start.
      writeFileSync(join(h.base, 'welcome.motd'), motd)
      mkdirSync(join(h.home, 'dtp'), { recursive: true })
      writeFileSync(join(h.home, 'dtp', 'motd.conf'), `경로=${join(h.base, 'welcome.motd')}\n`)
    }
    await startHost(h, ['rocky'])
    out.push(h)
  }
  return out
}

test('three hosts with independently made copies share one infohash; dtp:// bootstraps from all of them', { timeout: 180_000 }, async () => {
  const hs = await hosts(2, 3, 'Welcome to the test mirror\n')
  const infoHashes = new Set(hs.map(h => h.genInfo.rocky.infoHash))
  assert.equal(infoHashes.size, 1, 'same tree, same generation, on every host')
  const dest = join(tempDir(), 'mirror')
  const r = await runCli(['--json', 'pull', '--peer', '127.0.5.3:47921', '--peer', '127.0.5.4:47921', 'dtp://127.0.5.2/rocky', dest])
  assert.equal(r.code, 0, r.stderr)
  const summary = JSON.parse(r.stdout.trim().split('\n').pop()!)
  // Uncapped loopback hosts can finish 1.2 MB before the last handshake on a loaded machine;
  // test/sync.test.ts shows all three serving with capped seeders. Here: more than one.
  assert.ok(Object.keys(summary.bytesPerHost).length >= 2, JSON.stringify(summary.bytesPerHost))
  await assertSameTree(join(hs[0].webroot, 'rocky'), dest)
  // The welcome message arrives over the peer wire (printed on stderr when not --json).
  const again = await runCli(['pull', 'dtp://127.0.5.2/rocky', dest])
  assert.equal(again.code, 0, again.stderr)
  assert.match(again.stderr, /Welcome to the test mirror/)
  assert.match(again.stdout, /already at generation/)
})

test('a host with bit rot (same size and mtime, wrong bytes) is dropped and named; the sync completes', { timeout: 180_000 }, async () => {
  const [good, rotten] = await hosts(6, 2)
  // Every file rots, so whichever piece the host is asked for fails its hash.
  for (const f of Object.keys(tree())) {
    const p = join(rotten.webroot, 'rocky', f)
    const data = readFileSync(p)
    data[data.length >> 1] ^= 0xff
    writeFileSync(p, data)
    utimesSync(p, OLD_MTIME, OLD_MTIME)
  }
  const dest = join(tempDir(), 'mirror')
  // One connection at a time, the rotten host dialled first (--peer addresses come before
  // the dtp:// host): its first piece must fail before the good host is asked.
  const r = await pullCli(`dtp://${good.address}/rocky`, dest, [`${rotten.address}:47921`], ['--connections', '1'])
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stderr, /127\.0\.5\.7:47921.*hash check/)
  await assertSameTree(join(good.webroot, 'rocky'), dest)
})

test('dsync sync REPO: dsync-url=dtp://, status file 1 on success, 0 on failure; a held lock refuses a second run', { timeout: 180_000 }, async () => {
  const [host] = await hosts(9, 1)
  const base = tempDir()
  const { makeHome } = await import('../testbed/tree.js')
  const down = makeHome(base, {})
  const save = join(down.webroot, 'rocky')
  const status = join(base, 'rocky.status')
  writeFileSync(join(down.home, 'repos/rocky.conf'), `repo=rocky\nsave=${save}\ndsync-url=dtp://${host.address}/rocky\nstatus=${status}\nretries=0\n`)
  const r = await runCli(['--home', down.home, '-sync', 'rocky'])
  assert.equal(r.code, 0, r.stderr)
  assert.equal(readFileSync(status, 'utf8'), '1\n')
  await assertSameTree(join(host.webroot, 'rocky'), save)

  // A live process holding the lock (this test's own pid) makes a second sync refuse.
  writeFileSync(join(save, '.dsync/lock'), `${process.pid}\n`)
  const locked = await runCli(['--home', down.home, 'sync', 'rocky'])
  assert.equal(locked.code, 7)
  assert.match(locked.stderr, /locked by process/)
  // A stale lock (no such process) is taken over.
  writeFileSync(join(save, '.dsync/lock'), '999999999\n')
  assert.equal((await runCli(['--home', down.home, 'sync', 'rocky'])).code, 0)

  writeFileSync(join(down.home, 'repos/rocky.conf'), `repo=rocky\nsave=${save}\ndsync-url=dtp://127.0.5.99:47921/rocky\nstatus=${status}\nretries=0\n`)
  const failed = await runCli(['--home', down.home, 'sync', 'rocky'])
  assert.equal(failed.code, 6)
  assert.equal(failed.stderr.trim().split('\n').length, 1, failed.stderr)
  assert.match(failed.stderr, /127\.0\.5\.99/)
  assert.equal(readFileSync(status, 'utf8'), '0\n')
})

test('pull --seed: the new mirror serves the next one as a DTP host, and stops on SIGINT', { timeout: 180_000 }, async () => {
  const [host] = await hosts(12, 1)
  const { spawn } = await import('node:child_process')
  const { CLI } = await import('../testbed/cli.js')
  const base = tempDir()
  const first = join(base, 'first')
  const seeder = spawn(process.execPath, [CLI, 'pull', '--seed', '--seed-listen', '127.0.5.20', '--seed-port', '47922', `dtp://${host.address}/rocky`, first])
  let err = ''
  seeder.stderr.on('data', d => (err += d))
  const exited = new Promise<number | null>(resolve => seeder.on('close', code => resolve(code)))
  try {
    const end = Date.now() + 60_000
    while (!/seeding .* as a DTP host/.test(err)) {
      assert.ok(Date.now() < end && seeder.exitCode === null, `the seeding pull did not come up: ${err}`)
      await new Promise(r => setTimeout(r, 100))
    }
    const second = join(base, 'second')
    const r = await runCli(['--json', 'pull', 'dtp://127.0.5.20:47922/rocky', second])
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(Object.keys(JSON.parse(r.stdout.trim().split('\n').pop()!).bytesPerHost), ['127.0.5.20:47922'])
    await assertSameTree(join(host.webroot, 'rocky'), second)
  } finally {
    seeder.kill('SIGINT')
  }
  assert.equal(await exited, 0)
})
