import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, unlinkSync } from 'node:fs'
import { join, relative } from 'node:path'
import { test } from 'node:test'
import { hasLibtorrent, startLibtorrentSeeder, type Seeder } from '../testbed/seeders.js'
import { stagingFiles, tempDir, writeTree } from '../testbed/tree.js'
import { assertSameTree } from '../testbed/same-tree.js'
import { makeUpstream, pullCli } from '../testbed/upstream.js'

// "Index files go in last, deletions after everything else": an APT-style update where
// dists/stable/{Release,InRelease} name Packages by SHA-256, Packages names the pool files,
// and a by-hash hardlink follows Packages. The pull is killed after every apply step and
// after single items inside the steps; after each kill the tree is checked as an APT client
// would see it, then a plain re-run must converge without fetching a byte (everything it
// needed was verified and staged before the apply began).

const SKIP = hasLibtorrent ? false : 'python3-libtorrent is not installed (apt-get install python3-libtorrent)'
const BIN = 'dists/stable/main/binary-amd64'
const INDEXES = ['dists/stable/InRelease', 'dists/stable/Release', `${BIN}/Packages`]

const sha = (data: Buffer | string) => createHash('sha256').update(data).digest('hex')

/** Pool files of one generation; `gen` 1 or 2 (2 drops pkg0-9, changes pkg10-12, adds new-*). */
function pool(gen: 1 | 2): Record<string, Buffer> {
  const files: Record<string, Buffer> = {}
  for (let i = 0; i < 30; i++) {
    if (gen === 2 && i < 10) continue
    const changed = gen === 2 && i >= 10 && i < 13
    files[`pool/main/p${i % 3}/pkg${i}.deb`] = Buffer.alloc(4000 + ((i * 7919) % 30_000) + (changed ? 777 : 0), changed ? 200 + i : i)
  }
  if (gen === 2) for (let i = 0; i < 8; i++) files[`pool/main/new/new${i}.deb`] = Buffer.alloc(5000 + i * 3001, 100 + i)
  return files
}

/** The whole tree of one generation: pool, Packages naming it, Release and InRelease naming Packages. */
function generation(gen: 1 | 2): Record<string, Buffer> {
  const files = pool(gen)
  const packages = Object.entries(files).map(([p, d]) => `Filename: ${p}\nSize: ${d.length}\nSHA256: ${sha(d)}\n`).join('\n')
  const release = `Suite: stable\nDate: generation ${gen}\nSHA256:\n ${sha(packages)} ${packages.length} main/binary-amd64/Packages\n`
  return {
    ...files,
    [`${BIN}/Packages`]: Buffer.from(packages),
    'dists/stable/Release': Buffer.from(release),
    'dists/stable/InRelease': Buffer.from(`-----BEGIN PGP SIGNED MESSAGE-----\n${release}`),
    'README': Buffer.from('unchanged\n'),
  }
}

/** What an index file names: path (from the tree's root) -> SHA-256. */
function named(indexPath: string, text: string): Map<string, string> {
  const out = new Map<string, string>()
  if (indexPath.endsWith('/Packages')) {
    for (const m of text.matchAll(/^Filename: (.+)\nSize: \d+\nSHA256: ([0-9a-f]{64})$/gm)) out.set(m[1], m[2])
  } else {
    for (const m of text.matchAll(/^ ([0-9a-f]{64}) \d+ (\S+)$/gm)) out.set(`dists/stable/${m[2]}`, m[1])
    out.set(`${BIN}/by-hash/SHA256/${[...out.values()][0]}`, [...out.values()][0])
  }
  return out
}

function files(root: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>()
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const abs = join(d, name)
      const rel = relative(root, abs)
      if (rel === '.dsync') continue
      const st = lstatSync(abs)
      if (st.isDirectory()) walk(abs)
      else out.set(rel, readFileSync(abs))
    }
  }
  walk(root)
  return out
}

/** The promises of an interrupted apply, checked on DEST as it is after a SIGKILL. */
function assertConsistent(dest: string, v1: Map<string, Buffer>, v2: Map<string, Buffer>, v2Manifest: Buffer, where: string): void {
  const live = files(dest)
  // 1. Every file is its old or its new version, by content; no stray file.
  for (const [path, data] of live) {
    const ok = v1.get(path)?.equals(data) || v2.get(path)?.equals(data)
    assert.ok(ok, `${where}: ${path} is neither its old nor its new version`)
  }
  // 2. Every index file is there and every file it names is there; a new index file names
  //    only files already at their new version (an old one may name a file changed in place:
  //    no order can serve both, and a new index must never be the one that is wrong).
  for (const index of INDEXES) {
    const data = live.get(index)
    assert.ok(data, `${where}: index file ${index} missing`)
    const isNew = data.equals(v2.get(index)!)
    for (const [path, hash] of named(index, data.toString('utf8'))) {
      const have = live.get(path)
      assert.ok(have, `${where}: ${index} (${isNew ? 'new' : 'old'}) names ${path}, which is missing`)
      if (isNew) assert.equal(sha(have), hash, `${where}: ${index} is newer than ${path}, which it names`)
    }
  }
  // 3. Nothing is deleted before every new index is in place.
  const removed = [...v1.keys()].filter(p => !v2.has(p))
  if (removed.some(p => !live.has(p))) {
    for (const index of INDEXES) assert.ok(live.get(index)!.equals(v2.get(index)!), `${where}: a file was deleted while ${index} was still old`)
  }
  // 4. data.dsync is the commit record: once it is the new one, the tree is whole.
  const record = readFileSync(join(dest, '.dsync/data.dsync'))
  if (record.equals(v2Manifest)) {
    assert.equal(live.size, v2.size, `${where}: committed with ${live.size} files, not ${v2.size}`)
    for (const [path, data] of v2) assert.ok(live.get(path)?.equals(data), `${where}: committed before ${path} was in place`)
  }
}

test('index files last: a SIGKILL after every apply step and item leaves a tree an APT client can use; each re-run converges fetching nothing', { skip: SKIP, timeout: 600_000 }, async t => {
  const v1Files = generation(1)
  const up = await makeUpstream(v1Files)
  const addByHash = () => {
    // APT's by-hash: a hardlink to Packages named by its SHA-256 (an index file by its target).
    mkdirSync(join(up.save, BIN, 'by-hash/SHA256'), { recursive: true })
    const p = readFileSync(join(up.save, BIN, 'Packages'))
    linkSync(join(up.save, BIN, 'Packages'), join(up.save, BIN, 'by-hash/SHA256', sha(p)))
  }
  addByHash()
  await up.regenerate()
  let seeder: Seeder = await startLibtorrentSeeder(up.torrent, up.webroot, '127.0.7.2')
  const base = tempDir()
  const v1Dest = join(base, 'v1')
  const first = await pullCli(up.torrent, v1Dest, [seeder.address])
  assert.equal(first.code, 0, first.stderr)
  const v1 = files(v1Dest)
  seeder.kill()

  // Generation 2: new, changed and removed pool files, new Packages, Release, InRelease, by-hash.
  for (const p of Object.keys(pool(1))) if (!(p in pool(2))) unlinkSync(join(up.save, p))
  rmSync(join(up.save, BIN, 'by-hash'), { recursive: true })
  writeTree(up.save, generation(2))
  addByHash()
  await up.regenerate()
  const v2 = files(up.save)
  const v2Manifest = readFileSync(join(up.save, '.dsync/data.dsync'))
  seeder = await startLibtorrentSeeder(up.torrent, up.webroot, '127.0.7.2')

  // The index step places Packages, its by-hash link, then Release and InRelease: a kill after
  // each. Deletions: the 10 pool files, by-hash/<old>, and the emptied folder.
  const faults = [
    'apply:mkdirs', 'apply:files:1', 'apply:files', 'apply:index:1', 'apply:index:2', 'apply:index:3', 'apply:index',
    'apply:deletes:1', 'apply:deletes', 'apply:commit',
  ]
  for (const fault of faults) {
    const dest = join(base, fault.replace(/:/g, '-'))
    execFileSync('cp', ['-a', v1Dest, dest])
    const killed = await pullCli(up.torrent, dest, [seeder.address], [], { DSYNC_FAULT: fault })
    assert.equal(killed.code, -1, `${fault}: the run was killed by the fault hook (exit ${killed.code}, ${killed.stderr})`)
    assert.equal(killed.summary, undefined)
    assertConsistent(dest, v1, v2, v2Manifest, fault)
    const resumed = await pullCli(up.torrent, dest, [seeder.address])
    assert.equal(resumed.code, 0, `${fault}: ${resumed.stderr}`)
    await assertSameTree(up.save, dest)
    // Everything was verified and staged before the apply began: nothing is fetched again.
    assert.equal(resumed.summary!.bytesReceived, 0, `${fault}: the resume fetched ${resumed.summary!.bytesReceived} bytes`)
    assert.deepEqual(stagingFiles(dest), [], `${fault}: staging left behind`)
    t.diagnostic(`${fault}: consistent after the kill; resume converged, 0 bytes fetched`)
    rmSync(dest, { recursive: true, force: true })
  }
})
