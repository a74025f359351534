import assert from 'node:assert/strict'
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, utimesSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { pullWatched } from '../testbed/pull-watch.js'
import { hasLibtorrent, startLibtorrentSeeder, type Seeder } from '../testbed/seeders.js'
import { OLD_MTIME, stagingFiles, tempDir, writeTree } from '../testbed/tree.js'
import { assertSameTree as sameTree } from '../testbed/same-tree.js'
import { makeUpstream, pullCli, type Upstream } from '../testbed/upstream.js'

const SKIP = hasLibtorrent ? false : 'python3-libtorrent is not installed (apt-get install python3-libtorrent)'

function repo(n = 60): Record<string, Buffer | string> {
  const files: Record<string, Buffer | string> = {}
  for (let i = 0; i < n; i++) files[`pool/main/${i % 4}/pkg${i}.deb`] = Buffer.alloc(3000 + ((i * 7919) % 70_000), i)
  files['dists/stable/Release'] = 'Suite: stable\n'
  files['dists/stable/main/binary-amd64/Packages'] = 'Package: pkg0\n'
  return files
}

async function seeders(up: Upstream, hosts: string[], opts: { uploadLimit?: number } = {}): Promise<Seeder[]> {
  return Promise.all(hosts.map(h => startLibtorrentSeeder(up.torrent, up.webroot, h, opts)))
}

async function assertSameTree(up: Upstream, dest: string): Promise<void> {
  await sameTree(up.save, dest)
}

test('bootstrap from a .torrent pulls from three hosts at once and converges', { skip: SKIP, timeout: 120_000 }, async () => {
  const up = await makeUpstream(repo())
  // Each host capped at 1 MB/s: the transfer outlasts connection set-up, so a client that
  // uses every host is told from one that finishes on the first.
  const s = await seeders(up, ['127.0.0.2', '127.0.0.3', '127.0.0.4'], { uploadLimit: 1_000_000 })
  const dest = join(tempDir(), 'mirror')
  const r = await pullCli(up.torrent, dest, s.map(x => x.address))
  assert.equal(r.code, 0, r.stderr)
  await assertSameTree(up, dest)
  assert.equal(Object.keys(r.summary!.bytesPerHost).length, 3, `every host served: ${JSON.stringify(r.summary!.bytesPerHost)}`)
  assert.deepEqual(stagingFiles(dest), [])
})

test('bootstrap from a magnet link alone (metadata from the hosts)', { skip: SKIP, timeout: 120_000 }, async () => {
  const up = await makeUpstream(repo(20))
  const s = await seeders(up, ['127.0.0.2', '127.0.0.3'])
  const dest = join(tempDir(), 'mirror')
  const r = await pullCli(up.magnet(), dest, s.map(x => x.address))
  assert.equal(r.code, 0, r.stderr)
  await assertSameTree(up, dest)
})

test('an update (add, change, delete, rename, symlink change) moves only the changed bytes', { skip: SKIP, timeout: 120_000 }, async () => {
  const up = await makeUpstream({ ...repo(40), 'latest': 'x' })
  rmSync(join(up.save, 'latest'))
  symlinkSync('pool/main/0/pkg0.deb', join(up.save, 'latest'))
  mkdirSync(join(up.save, 'empty'))
  await up.regenerate()
  let s = await seeders(up, ['127.0.0.2', '127.0.0.3'])
  const dest = join(tempDir(), 'mirror')
  assert.equal((await pullCli(up.torrent, dest, s.map(x => x.address))).code, 0)
  for (const x of s) x.kill()

  const changed = Buffer.alloc(12_345, 0xee)
  const added = Buffer.alloc(54_321, 0xaa)
  writeTree(up.save, { 'pool/main/1/pkg1.deb': changed, 'pool/new/fresh.deb': added, 'dists/stable/Release': 'Suite: stable\nDate: 2\n' })
  renameSync(join(up.save, 'pool/main/2/pkg2.deb'), join(up.save, 'pool/main/2/renamed.deb'))
  unlinkSync(join(up.save, 'pool/main/3/pkg3.deb'))
  unlinkSync(join(up.save, 'latest'))
  symlinkSync('pool/new/fresh.deb', join(up.save, 'latest'))
  rmSync(join(up.save, 'empty'), { recursive: true })
  for (const d of ['pool/main/2', 'pool/main/3', 'pool/new', 'pool', '.']) utimesSync(join(up.save, d), OLD_MTIME, OLD_MTIME)
  await up.regenerate()
  s = await seeders(up, ['127.0.0.2', '127.0.0.3'])
  const r = await pullCli(up.torrent, dest, s.map(x => x.address))
  assert.equal(r.code, 0, r.stderr)
  await assertSameTree(up, dest)
  const newBytes = changed.length + added.length + Buffer.byteLength('Suite: stable\nDate: 2\n')
  // Exactly the new content: the rename is copied locally, pads and neighbours never travel.
  assert.equal(r.summary!.bytesReceived, newBytes)
  assert.equal(r.summary!.filesCopiedLocally, 1)
  assert.equal(r.summary!.removed, 3) // pkg3.deb, pkg2.deb (renamed away), empty/

  const again = await pullCli(up.torrent, dest, s.map(x => x.address))
  assert.equal(again.code, 0, again.stderr)
  assert.equal(again.summary!.upToDate, true)
  assert.equal(again.summary!.bytesReceived, 0)
})

test('a host killed mid-transfer does not stop the sync', { skip: SKIP, timeout: 120_000 }, async () => {
  const up = await makeUpstream(repo(60))
  // Capped so the transfer lasts long enough to kill a host in the middle of it.
  const s = await seeders(up, ['127.0.0.2', '127.0.0.3', '127.0.0.4'], { uploadLimit: 400_000 })
  const dest = join(tempDir(), 'mirror')
  let at: { bytesDone: number; bytesTotal: number } | undefined
  const r = await pullWatched(up.torrent, dest, s.map(x => x.address), {
    onEvent: e => {
      if (!at && e.event === 'progress' && e.phase === 'files' && e.bytesDone >= e.bytesTotal * 0.4) {
        at = { bytesDone: e.bytesDone, bytesTotal: e.bytesTotal }
        s[0].kill()
      }
    },
  })
  assert.equal(r.code, 0, r.stderr)
  assert.ok(at && at.bytesDone < at.bytesTotal, `the host was killed during the transfer (${JSON.stringify(at)})`)
  const per = r.summary!.bytesPerHost
  // The killed host served part of the data before it died, the others the rest.
  assert.ok((per[s[0].address] ?? 0) > 0, `the killed host had served something: ${JSON.stringify(per)}`)
  assert.ok(per[s[0].address] < r.summary!.bytesReceived, JSON.stringify(per))
  assert.equal(Object.values(per).reduce((a, b) => a + b, 0), r.summary!.bytesReceived)
  await assertSameTree(up, dest)
})

test('SIGKILL during the download: the re-run keeps verified staged data and converges', { skip: SKIP, timeout: 120_000 }, async () => {
  const up = await makeUpstream(repo(60))
  const s = await seeders(up, ['127.0.0.2', '127.0.0.3'], { uploadLimit: 500_000 })
  const base = tempDir()
  const dest = join(base, 'mirror')
  writeTree(dest, { 'old-file.txt': 'from the previous generation' })
  let at: { bytesDone: number; bytesTotal: number } | undefined
  const killed = await pullWatched(up.torrent, dest, s.map(x => x.address), {
    onEvent: (e, child) => {
      if (!at && e.event === 'progress' && e.phase === 'files' && e.bytesDone > 300_000) {
        at = { bytesDone: e.bytesDone, bytesTotal: e.bytesTotal }
        child.kill('SIGKILL')
      }
    },
  })
  assert.equal(killed.signal, 'SIGKILL', killed.stderr)
  assert.ok(at && at.bytesDone < at.bytesTotal, `killed during the file transfer (${JSON.stringify(at)})`)
  // The live tree is untouched by a killed download: nothing new in place, the old file kept.
  assert.equal(readFileSync(join(dest, 'old-file.txt'), 'utf8'), 'from the previous generation')
  assert.ok(!existsSync(join(dest, 'pool')))
  const r = await pullCli(up.torrent, dest, s.map(x => x.address))
  assert.equal(r.code, 0, r.stderr)
  await assertSameTree(up, dest)
  // Everything the killed run had verified (its last progress event) is kept, not fetched again.
  assert.ok(r.summary!.bytesReceived <= at.bytesTotal - at.bytesDone,
    `re-run fetched ${r.summary!.bytesReceived}; at most ${at.bytesTotal - at.bytesDone} of ${at.bytesTotal} were not yet verified`)
})

test('SIGKILL during the apply: no file is ever missing from the live tree, and the re-run converges', { skip: SKIP, timeout: 120_000 }, async () => {
  const up = await makeUpstream(repo(20))
  let s = await seeders(up, ['127.0.0.2'])
  const dest = join(tempDir(), 'mirror')
  assert.equal((await pullCli(up.torrent, dest, s.map(x => x.address))).code, 0)
  s[0].kill()
  const before = readdirSync(join(dest, 'pool/main/0'))
  writeTree(up.save, { 'pool/main/0/pkg0.deb': 'new content', 'pool/extra.deb': 'added' })
  unlinkSync(join(up.save, 'pool/main/0/pkg4.deb'))
  await up.regenerate()
  s = await seeders(up, ['127.0.0.2'])
  for (const step of ['mkdirs', 'files', 'index']) {
    const k = await pullCli(up.torrent, dest, s.map(x => x.address), [], { DSYNC_FAULT: `apply:${step}` })
    assert.notEqual(k.code, 0, 'the fault hook killed the run')
    // Deletions come last: every file of the old generation is still there.
    for (const f of before) assert.ok(existsSync(join(dest, 'pool/main/0', f)), `${f} present after a kill at ${step}`)
    assert.ok(existsSync(join(dest, 'dists/stable/Release')))
  }
  const r = await pullCli(up.torrent, dest, s.map(x => x.address))
  assert.equal(r.code, 0, r.stderr)
  await assertSameTree(up, dest)
})

/** A mirror in sync with a fresh upstream, then `change` upstream, regenerated and seeded anew. */
async function syncedThenChanged(change: (up: Upstream) => void): Promise<{ up: Upstream; dest: string; s: Seeder[] }> {
  const up = await makeUpstream(repo(40))
  const first = await seeders(up, ['127.0.0.2'])
  const dest = join(tempDir(), 'mirror')
  assert.equal((await pullCli(up.torrent, dest, first.map(x => x.address))).code, 0)
  first[0].kill()
  change(up)
  await up.regenerate()
  return { up, dest, s: await seeders(up, ['127.0.0.2']) }
}

test('the mass-delete guard refuses to empty a mirror unless forced', { skip: SKIP, timeout: 120_000 }, async () => {
  const { up, dest, s } = await syncedThenChanged(u => rmSync(join(u.save, 'pool'), { recursive: true }))
  const r = await pullCli(up.torrent, dest, s.map(x => x.address))
  assert.equal(r.code, 1)
  assert.match(r.stderr, /refusing to delete \d+ of \d+ entries/)
  assert.equal(r.stderr.trim().split('\n').length, 1)
  assert.ok(existsSync(join(dest, 'pool/main/0/pkg0.deb')), 'nothing deleted')
  const forced = await pullCli(up.torrent, dest, s.map(x => x.address), ['--force'])
  assert.equal(forced.code, 0, forced.stderr)
  await assertSameTree(up, dest)
})

test('hardlinks (APT by-hash style, linked to an index file), empty files and symlinks survive bootstrap and update', { skip: SKIP, timeout: 120_000 }, async () => {
  const { linkSync, writeFileSync, readlinkSync, statSync, mkdtempSync } = await import('node:fs')
  const { createHash } = await import('node:crypto')
  const up = await makeUpstream({ ...repo(8), 'dists/stable/main/binary-amd64/Packages.gz': 'index v1', 'empty.txt': '' })
  const bin = join(up.save, 'dists/stable/main/binary-amd64')
  mkdirSync(join(bin, 'by-hash/SHA256'), { recursive: true })
  linkSync(join(bin, 'Packages.gz'), join(bin, 'by-hash/SHA256/h1'))
  // An upstream symlink named as a predictable temp file, pointing outside DEST, next to two
  // index files with one content: nothing may ever be written through it.
  const victimDir = mkdtempSync(join(tempDir(), 'victim-'))
  const victim = join(victimDir, 'victim.txt')
  writeFileSync(victim, 'untouched')
  const dup = 'duplicated index\n'
  const tmpName = `.${createHash('sha256').update(dup).digest('hex').slice(0, 16)}.dsync-tmp`
  writeTree(up.save, { 'dists/a/Release': dup, 'dists/b/Release': dup })
  symlinkSync(victim, join(up.save, 'dists/a', tmpName))
  settle(up)
  await up.regenerate()
  let s = await seeders(up, ['127.0.0.2'])
  const dest = join(tempDir(), 'mirror')
  const r1 = await pullCli(up.torrent, dest, s.map(x => x.address))
  assert.equal(r1.code, 0, r1.stderr)
  await assertSameTree(up, dest)
  const dbin = join(dest, 'dists/stable/main/binary-amd64')
  assert.equal(statSync(join(dbin, 'Packages.gz')).ino, statSync(join(dbin, 'by-hash/SHA256/h1')).ino, 'hardlinked in DEST too')
  assert.equal(readlinkSync(join(dest, 'dists/a', tmpName)), victim)
  assert.equal(readFileSync(victim, 'utf8'), 'untouched')
  // Up to date with local hardlinks: nothing to do (they are not conflicts).
  const again = await pullCli(up.torrent, dest, s.map(x => x.address))
  assert.equal(again.summary!.upToDate, true, again.stdout)
  s[0].kill()

  // The index file changes; its by-hash twin must follow, on the same inode.
  unlinkSync(join(bin, 'by-hash/SHA256/h1'))
  writeTree(up.save, { 'dists/stable/main/binary-amd64/Packages.gz': 'index v2' })
  linkSync(join(bin, 'Packages.gz'), join(bin, 'by-hash/SHA256/h1'))
  settle(up)
  await up.regenerate()
  s = await seeders(up, ['127.0.0.2'])
  const r2 = await pullCli(up.torrent, dest, s.map(x => x.address))
  assert.equal(r2.code, 0, r2.stderr)
  await assertSameTree(up, dest)
  assert.equal(readFileSync(join(dbin, 'by-hash/SHA256/h1'), 'utf8'), 'index v2')
  assert.equal(readFileSync(victim, 'utf8'), 'untouched')
})

test('a folder replaced by a symlink upstream counts against the delete guard', { skip: SKIP, timeout: 120_000 }, async () => {
  const { up, dest, s } = await syncedThenChanged(u => {
    rmSync(join(u.save, 'pool'), { recursive: true })
    symlinkSync('dists', join(u.save, 'pool'))
  })
  const diff = await runCliJson(['diff', '--peer', s[0].address, up.torrent, dest])
  assert.ok(diff.plan.removed.length > 40, `diff shows the loss: ${diff.plan.removed.length}`)
  const r = await pullCli(up.torrent, dest, s.map(x => x.address))
  assert.equal(r.code, 1)
  assert.match(r.stderr, /refusing to delete/)
  assert.ok(existsSync(join(dest, 'pool/main/0/pkg0.deb')))
})

/** Directory mtimes as rsync -a would leave them: settled, so data.dsync is stable. */
function settle(up: Upstream): void {
  for (const d of ['.', 'dists', 'dists/a', 'dists/b', 'dists/stable', 'dists/stable/main', 'dists/stable/main/binary-amd64',
    'dists/stable/main/binary-amd64/by-hash', 'dists/stable/main/binary-amd64/by-hash/SHA256']) {
    if (existsSync(join(up.save, d))) utimesSync(join(up.save, d), OLD_MTIME, OLD_MTIME)
  }
}

async function runCliJson(args: string[]): Promise<{ plan: { added: string[]; changed: string[]; removed: string[] } }> {
  const { runCli } = await import('../testbed/cli.js')
  const r = await runCli(['--json', ...args])
  assert.equal(r.code, 0, r.stderr)
  return JSON.parse(r.stdout.trim().split('\n').pop()!)
}
