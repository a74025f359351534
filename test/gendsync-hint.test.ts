import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { contentTable, tableCosts } from '../src/manifest/content-table.js'
import { shardsIndexing } from '../src/manifest/hinted.js'
import { indexLines } from '../src/manifest/manifest-lines.js'
import { repoFiles } from '../src/manifest/paths.js'
import { loadTables } from '../src/manifest/table-cache.js'
import { buildIndexTorrent } from '../src/torrent/shards.js'
import { readTorrentInfo } from '../src/torrent/read.js'
import { runCli } from '../testbed/cli.js'
import { hasRsync } from '../testbed/rsyncd.js'
import { tempDir, writePool as writePaddedPool } from '../testbed/tree.js'

const OLD = new Date('2024-01-02T03:04:05Z')

function writePool(root: string, count: number): void {
  for (let i = 0; i < count; i++) {
    const dir = join(root, 'pool', 'main', `p${Math.floor(i / 500)}`, `pkg${Math.floor(i / 10)}`)
    if (i % 10 === 0) mkdirSync(dir, { recursive: true })
    const file = join(dir, `f${i}_1.0_amd64.deb`)
    writeFileSync(file, `file ${i}\n`.repeat(1 + (i % 7)))
    utimesSync(file, OLD, OLD)
  }
  // Names data.dsync escapes (backslash, tab) or that are not ASCII: the sharded path reads
  // paths from data.dsync's bytes and must measure and encode them as a full run does.
  for (const name of ['back\\slash_1.0_all.deb', 'tab\there_1.0_all.deb', 'é-ü_1.0_all.deb', '日本_1.0_all.deb']) {
    const file = join(root, 'pool', 'main', 'p0', 'pkg5', name)
    writeFileSync(file, `${name}\n`.repeat(3))
    utimesSync(file, OLD, OLD)
  }
  mkdirSync(join(root, 'dists', 'stable'), { recursive: true })
  writeFileSync(join(root, 'dists', 'stable', 'Release'), 'release 1\n')
}

/** The upstream's next generation: changed, new, removed files, a new folder, a removed folder, a file turned symlink. */
function changeUpstream(src: string): void {
  writeFileSync(join(src, 'pool/main/p0/pkg0/f3_1.0_amd64.deb'), 'changed\n')
  writeFileSync(join(src, 'pool/main/p0/pkg0/f3_1.1_amd64.deb'), 'new version\n')
  unlinkSync(join(src, 'pool/main/p0/pkg0/f2_1.0_amd64.deb'))
  rmSync(join(src, 'pool/main/p0/pkg1'), { recursive: true })
  mkdirSync(join(src, 'pool/main/p0/newpkg/sub'), { recursive: true })
  writeFileSync(join(src, 'pool/main/p0/newpkg/sub/n_2.0_all.deb'), 'brand new\n')
  writeFileSync(join(src, 'pool/main/p0/newpkg/empty'), '')
  unlinkSync(join(src, 'pool/main/p0/pkg2/f25_1.0_amd64.deb'))
  symlinkSync('f24_1.0_amd64.deb', join(src, 'pool/main/p0/pkg2/f25_1.0_amd64.deb'))
  // Another size: written in the same second as 'release 1' (a fast machine), an equal-size file
  // can pass rsync's size+mtime quick check and not be sent, so the hint would not name it.
  writeFileSync(join(src, 'dists/stable/Release'), 'release 2, next\n')
}

async function hintRoundTrip(t: { diagnostic(s: string): void }, files: number): Promise<void> {
  const base = tempDir()
  const src = join(base, 'upstream')
  const save = join(base, 'web', 'pool')
  const home = join(base, 'home')
  writePool(src, files)
  mkdirSync(join(home, 'repos'), { recursive: true })
  writeFileSync(join(home, 'xync.conf'), `webroot=${join(base, 'web')}\n`)
  writeFileSync(join(home, 'repos', 'pool.conf'), `repo=pool\nsave=${save}\ndsync=true\n`)
  mkdirSync(save, { recursive: true })
  execFileSync('rsync', ['-a', `${src}/`, `${save}/`])
  const gendsync = async (...args: string[]) => {
    const r = await runCli(['--home', home, '--json', 'gendsync', ...args])
    assert.equal(r.code, 0, r.stderr)
    return { ...JSON.parse(r.stdout) as { changed: boolean; hashedFiles: number; shards?: { built: boolean }[] }, stderr: r.stderr }
  }
  const first = await gendsync()
  t.diagnostic(`${files} files: ${first.shards ? `${first.shards.length} shards` : 'one torrent'}`)
  // The first run's torrents are the reference every later comparison uses: checked against the files themselves.
  assertTorrentsHashFiles(save)
  // A full run leaves the hinted run's caches too (src/publish/generate.ts): the one below starts from them.
  if (first.shards) assertCachesDescribeList(save)

  changeUpstream(src)
  // What a mirror's update script has at hand: rsync's own list of what it changed.
  const list = execFileSync('rsync', ['-a', '--delete', '--exclude=/.dsync', '--itemize-changes', `${src}/`, `${save}/`], { encoding: 'utf8' })
  assert.match(list, /\*deleting +pool\/main\/p0\/pkg1\//)
  writeFileSync(join(base, 'changes'), list)
  const hinted = await gendsync('--changed', join(base, 'changes'))
  assert.equal(hinted.changed, true)
  assert.doesNotMatch(hinted.stderr, /not used/, 'the hint was used, not a full walk')
  // Read: the changed file, the new version, the new folder's two files and Release; nothing else.
  assert.equal(hinted.hashedFiles, 5)
  // Every change is in the first shard's range (dists/ and pool/main/p0/): only it is encoded again.
  if (first.shards) assert.deepEqual(hinted.shards!.map(s => s.built), first.shards.map((_, i) => i === 0))
  const outputs = () => outputsOf(save)
  const afterHint = outputs()
  // A first gendsync of a copy of the tree (no previous generation, no cache: every piece hashed
  // from the files) writes the same bytes; an unchanged rerun alone would not notice a wrong
  // piece hash in a spliced shard, since each shard file still hashes to its own name.
  assert.deepEqual(await fromScratch(save, base), afterHint)
  // A full walk of the same tree finds nothing to change: the hinted outputs are exactly its own.
  const full = await gendsync()
  assert.equal(full.changed, false, 'a full run after the hinted one changed the outputs')
  assert.deepEqual(outputs(), afterHint)

  // A plain list naming only the files: their folders' new mtimes are found all the same.
  writeFileSync(join(save, 'pool/main/p0/pkg3/added.deb'), 'added\n')
  unlinkSync(join(save, 'pool/main/p0/pkg4/f40_1.0_amd64.deb'))
  writeFileSync(join(base, 'plain'), 'pool/main/p0/pkg3/added.deb\npool/main/p0/pkg4/f40_1.0_amd64.deb\n')
  const plain = await gendsync('--changed', join(base, 'plain'))
  assert.deepEqual([plain.changed, plain.hashedFiles], [true, 1])
  if (first.shards) assert.deepEqual(plain.shards!.map(s => s.built), first.shards.map((_, i) => i === 0))
  const afterPlain = outputs()
  assert.deepEqual(await fromScratch(save, base), afterPlain)
  assert.equal((await gendsync()).changed, false, 'a full run after the plain hint changed the outputs')
  assert.deepEqual(outputs(), afterPlain)
  if (first.shards) await damagedTables(save, base, gendsync, outputs)
  if (first.shards) await uncommittedTables(save, base, gendsync, outputs)
  if (first.shards) await damagedShard(save, base, gendsync, outputs, afterPlain)
  if (first.shards) await laterShardDamaged(save, base, gendsync, outputs, 'last')
  if (first.shards) await laterShardDamaged(save, base, gendsync, outputs, 'first')
  if (first.shards) await damagedIndexPiece(save, base, gendsync, outputs)
  if (first.shards) await sameSizeRewrites(save, base, gendsync, outputs)
}

/**
 * `.dsync/tables` and `.dsync/lines` name the data.dsync beside them and hold what the hinted
 * run would compute from it: its content table and costs (content-table.ts), its line offsets.
 */
function assertCachesDescribeList(save: string): void {
  const dsync = join(save, '.dsync')
  const list = readFileSync(join(dsync, 'data.dsync'))
  const sha = createHash('sha256').update(list).digest('hex')
  const lines = indexLines(list)
  assert.ok(typeof lines !== 'string', `data.dsync: ${lines}`)
  const pieceLength = Number(/^piece-length (\d+)$/m.exec(list.toString('latin1', 0, 4096))?.[1])
  const cached = loadTables(join(dsync, 'tables'), lines, sha, pieceLength)
  assert.ok(cached, '.dsync/tables is missing, damaged, or names another list')
  const table = contentTable(lines)
  const costs = tableCosts(table, pieceLength)
  assert.equal(cached.table.count, table.count)
  for (const k of ['line', 'length', 'pathFrom', 'pathTo'] as const) assert.deepEqual(cached.table[k], table[k], `tables: ${k}`)
  for (const k of ['bytes', 'tokens', 'hash', 'entry'] as const) assert.deepEqual(cached.costs[k], costs[k], `tables: ${k}`)
  const offsets = readFileSync(join(dsync, 'lines'))
  assert.equal(offsets.toString('latin1', 0, 128).trim(), `DSYNC-LINES 1 ${sha} ${lines.count}`)
  const starts = lines.starts.subarray(0, lines.count + 1)
  assert.ok(offsets.subarray(128, offsets.length - 32).equals(Buffer.from(starts.buffer, starts.byteOffset, starts.byteLength)), '.dsync/lines: not the list\'s line offsets')
}

/**
 * A hinted run leaves the new list's content table and costs in .dsync/tables, named after
 * that data.dsync's SHA-256 (the "plain" run above started from them). Damaged on disk, the
 * file must not be used: here its column of path hashes is zeroed, which would move the
 * shard boundaries; the next hinted run must still write what a first run of a copy writes.
 */
async function damagedTables(
  save: string, base: string, gendsync: (...args: string[]) => Promise<{ stderr: string }>, outputs: () => Record<string, string>,
): Promise<void> {
  const file = join(save, '.dsync', 'tables')
  const bytes = readFileSync(file)
  const head = bytes.toString('latin1', 0, 128).trim().split(' ')
  const list = createHash('sha256').update(readFileSync(join(save, '.dsync', 'data.dsync'))).digest('hex')
  assert.deepEqual(head.slice(0, 3), ['DSYNC-TABLES', '1', list], 'the tables name the data.dsync they describe')
  const count = Number(head[4])
  // Columns: four of float64 (length, bytes, tokens, entry), then line, pathFrom, pathTo, hash as uint32.
  bytes.fill(0, 128 + count * 44, 128 + count * 48)
  writeFileSync(file, bytes)
  writeFileSync(join(save, 'pool/main/p0/pkg3/added.deb'), 'added, rewritten\n')
  writeFileSync(join(base, 'tables-change'), 'pool/main/p0/pkg3/added.deb\n')
  const hinted = await gendsync('--changed', join(base, 'tables-change'))
  assert.doesNotMatch(hinted.stderr, /not used/, 'the hint was used, not a full walk')
  assert.deepEqual(await fromScratch(save, base), outputs())
}

/**
 * The tables are written while the outputs are committed, not after (src/publish/generate.ts):
 * a run whose commit did not happen leaves tables naming a list that is not data.dsync. Here
 * the generation before an added file is put back, with the tables the run for that file
 * wrote; the same change given again must use the hint and write what a first run of a copy
 * writes (the tables of the other list are not used).
 */
async function uncommittedTables(
  save: string, base: string, gendsync: (...args: string[]) => Promise<{ stderr: string }>, outputs: () => Record<string, string>,
): Promise<void> {
  const dsync = join(save, '.dsync')
  const kept = join(base, 'kept-dsync')
  cpSync(dsync, kept, { recursive: true })
  writeFileSync(join(save, 'pool/main/p0/pkg3/uncommitted.deb'), 'its generation was not committed\n')
  writeFileSync(join(base, 'uncommitted'), 'pool/main/p0/pkg3/uncommitted.deb\n')
  await gendsync('--changed', join(base, 'uncommitted'))
  const tables = readFileSync(join(dsync, 'tables'))
  rmSync(dsync, { recursive: true })
  cpSync(kept, dsync, { recursive: true })
  writeFileSync(join(dsync, 'tables'), tables)
  const again = await gendsync('--changed', join(base, 'uncommitted'))
  assert.doesNotMatch(again.stderr, /not used/, 'the hint was used, not a full walk')
  assert.deepEqual(await fromScratch(save, base), outputs())
}

/**
 * Every piece of the repository's torrent and of every shard torrent under `save` is the
 * SHA-1 of the files' bytes as the torrent lays them out (pad entries as zeros, its last piece
 * short): what a BitTorrent client checks. The last piece is the unpadded hash of the last
 * file, which a full run reads apart from the rest (src/publish/full-run.ts, readTails).
 */
function assertTorrentsHashFiles(save: string): void {
  const dir = join(save, '.dsync')
  let shards: string[] = []
  try {
    shards = readdirSync(join(dir, 'shards')).map(n => join('shards', n))
  } catch {
    // one torrent: no shards folder
  }
  for (const name of ['pool.torrent', ...shards]) {
    const info = readTorrentInfo(readFileSync(join(dir, name)))
    const P = info.pieceLength
    const all = Buffer.concat(info.files.map(f => (f.pad ? Buffer.alloc(f.length) : readFileSync(join(save, f.path)))))
    assert.equal(info.pieces.length, Math.ceil(all.length / P) * 20, name)
    for (let i = 0; i * P < all.length; i++) {
      const piece = createHash('sha1').update(all.subarray(i * P, (i + 1) * P)).digest()
      assert.ok(piece.equals(info.pieces.subarray(i * 20, i * 20 + 20)), `${name}: piece ${i} of ${info.pieces.length / 20} differs from the files`)
    }
  }
}

/** data.dsync, the torrent, the magnet link and the shard files under `save`/.dsync, by name. */
function outputsOf(save: string): Record<string, string> {
  const dir = join(save, '.dsync')
  const names = ['data.dsync', 'pool.torrent', 'pool.magnet']
  try {
    names.push(...readdirSync(join(dir, 'shards')).map(n => join('shards', n)))
  } catch {
    // one torrent: no shards folder
  }
  return Object.fromEntries(names.map(n => [n, readFileSync(join(dir, n)).toString('base64')]))
}

/** The outputs of a first gendsync of a copy of `save` (same repository name, its own home). */
async function fromScratch(save: string, base: string): Promise<Record<string, string>> {
  const copy = join(base, 'scratch', 'pool')
  const home = join(base, 'scratch-home')
  // The copy is kept between calls and brought to save's state by rsync, which re-creates only
  // what differs (--checksum: a same-size rewrite within the same second is seen too); its
  // .dsync goes, so the run has no previous generation and no cache. Removing and copying
  // 34,000 files again took most of this file's time.
  rmSync(join(copy, '.dsync'), { recursive: true, force: true })
  mkdirSync(copy, { recursive: true })
  execFileSync('rsync', ['-a', '--checksum', '--delete', '--exclude=/.dsync', `${save}/`, `${copy}/`])
  mkdirSync(join(home, 'repos'), { recursive: true })
  writeFileSync(join(home, 'xync.conf'), `webroot=${join(base, 'scratch')}\n`)
  writeFileSync(join(home, 'repos', 'pool.conf'), `repo=pool\nsave=${copy}\ndsync=true\n`)
  const r = await runCli(['--home', home, '--json', 'gendsync'])
  assert.equal(r.code, 0, r.stderr)
  return outputsOf(copy)
}

/**
 * A shard file damaged on disk (same name, same size, one byte of a path changed): the hint
 * does not copy from it (it no longer hashes to its name) but walks the tree, and that full
 * run writes the shard again; a full run with nothing changed finds and repairs it too.
 */
async function damagedShard(
  save: string, base: string, gendsync: (...args: string[]) => Promise<{ stderr: string }>,
  outputs: () => Record<string, string>, good: Record<string, string>,
): Promise<void> {
  const dir = join(save, '.dsync', 'shards')
  const damage = () => {
    const file = join(dir, readdirSync(dir).sort()[0])
    const bytes = readFileSync(file)
    const at = bytes.indexOf('4:pathl') + 12
    bytes[at] = bytes[at] === 0x61 ? 0x62 : 0x61
    writeFileSync(file, bytes)
  }
  damage()
  writeFileSync(join(save, 'dists', 'stable', 'Release'), 'release 3, later\n')
  writeFileSync(join(base, 'release'), 'dists/stable/Release\n')
  const hinted = await gendsync('--changed', join(base, 'release'))
  assert.match(hinted.stderr, /change hint not used \(.*is not the torrent its name says\)/)
  const afterRelease = outputs()
  assert.equal((await gendsync() as { changed?: boolean }).changed, false)
  assert.deepEqual(outputs(), afterRelease)
  // Unchanged tree: the damaged file is found without rebuilding anything else, and rewritten.
  damage()
  await gendsync()
  assert.deepEqual(outputs(), afterRelease)
  assert.notDeepEqual(afterRelease, good)
}

/**
 * The last shard (in the index's order) damaged while the change is in the first: a hinted run
 * stages data.dsync and the first shard as soon as each is made (EarlyOutputs), finds the
 * damage only when it reads the last one, and falls back to a full run. What it staged must be
 * dropped (the full run stages the same files again): the run succeeds and commits the full
 * run's outputs, those of a first run of a copy. `first`: the shard the change is in is the
 * damaged one, the one the rebuilt shard copies from (its check shares its hashing with the new
 * shard's infohash: src/manifest/shard-rebuild.ts, checkUsed).
 */
async function laterShardDamaged(
  save: string, base: string, gendsync: (...args: string[]) => Promise<{ stderr: string }>, outputs: () => Record<string, string>,
  which: 'first' | 'last',
): Promise<void> {
  const dsync = join(save, '.dsync')
  const index = readTorrentInfo(readFileSync(join(dsync, 'pool.torrent')))
  const shardFiles = index.files.filter(f => !f.pad).slice(1).map(f => f.path.split('/').pop()!)
  assert.ok(shardFiles.length >= 2, 'two shards at least')
  const file = join(dsync, 'shards', shardFiles[which === 'first' ? 0 : shardFiles.length - 1])
  const bytes = readFileSync(file)
  // A path byte near the end of the files list: after the first bytes a rebuilt shard shares.
  const at = bytes.lastIndexOf('4:pathl') + 12
  bytes[at] = bytes[at] === 0x61 ? 0x62 : 0x61
  writeFileSync(file, bytes)
  writeFileSync(join(save, 'dists', 'stable', 'Release'), `release 4, ${which} shard damaged\n`)
  writeFileSync(join(base, 'release4'), 'dists/stable/Release\n')
  const hinted = await gendsync('--changed', join(base, 'release4'))
  assert.match(hinted.stderr, /change hint not used \(.*is not the torrent its name says\)/)
  assert.deepEqual(await fromScratch(save, base), outputs())
}

/**
 * A hinted run takes the index's piece hashes of a rebuilt shard's unchanged 16 KiB windows from
 * the previous index torrent, but only from the index the magnet link names. Here one such hash
 * in the index file is damaged (the index no longer hashes to the magnet's infohash) and the
 * change is a same-size rewrite in the first shard, so that window is the previous one byte for
 * byte: the run must hash it, and write what a first run of a copy writes.
 */
async function damagedIndexPiece(
  save: string, base: string, gendsync: (...args: string[]) => Promise<{ stderr: string }>, outputs: () => Record<string, string>,
): Promise<void> {
  const file = join(save, '.dsync', 'pool.torrent')
  const bytes = readFileSync(file)
  const index = readTorrentInfo(bytes)
  const P = index.pieceLength
  // The first shard file's second piece: files are piece-aligned (pads), data.dsync first.
  const shard = index.files.filter(f => !f.pad)[1]
  assert.ok(shard.length > 3 * P, 'the first shard file spans a few pieces')
  const piece = Math.ceil(index.files[0].length / P) + 1
  const at = bytes.indexOf(index.pieces.subarray(piece * 20, piece * 20 + 20))
  assert.ok(at > 0)
  bytes[at] ^= 0xff
  writeFileSync(file, bytes)
  const release = join(save, 'dists', 'stable', 'Release')
  const rewritten = Buffer.from('release 5, one index piece bad\n')
  assert.equal(rewritten.length, readFileSync(release).length, 'a same-size rewrite')
  writeFileSync(release, rewritten)
  writeFileSync(join(base, 'release5'), 'dists/stable/Release\n')
  const hinted = await gendsync('--changed', join(base, 'release5'))
  assert.doesNotMatch(hinted.stderr, /not used/, 'the hint was used, not a full walk')
  assert.deepEqual(await fromScratch(save, base), outputs())
}

/**
 * Same-size rewrites of files in the middle of a shard: the rebuilt shard is the previous file
 * with those files' piece hashes patched where it was read (src/manifest/shard-rebuild.ts,
 * patchInPlace). First with that previous file damaged before the first patched byte: the hint
 * must not be used (its check shares that prefix's SHA-1 with the new infohash). Then in the
 * first and the last shard, with the index the magnet link names: the new index keeps the
 * previous index's hashes only of windows no patch touched, and every output must be a first
 * run's of a copy.
 */
async function sameSizeRewrites(
  save: string, base: string, gendsync: (...args: string[]) => Promise<{ stderr: string }>, outputs: () => Record<string, string>,
): Promise<void> {
  const dsync = join(save, '.dsync')
  const shardFiles = () => readTorrentInfo(readFileSync(join(dsync, 'pool.torrent'))).files.filter(f => !f.pad).slice(1).map(f => join(save, f.path))
  const middleOf = (shard: string) => {
    const files = readTorrentInfo(readFileSync(shard)).files.filter(f => !f.pad)
    return files[files.length >> 1].path
  }
  const rewrite = (path: string, tag: string) => {
    const file = join(save, path)
    const bytes = readFileSync(file)
    const next = Buffer.from(`${tag} ${bytes.toString('latin1')}`.slice(0, bytes.length), 'latin1')
    assert.ok(!next.equals(bytes) && next.length === bytes.length)
    writeFileSync(file, next)
  }
  const first = shardFiles()[0]
  const damaged = readFileSync(first)
  const at = damaged.indexOf('4:pathl') + 12
  damaged[at] = damaged[at] === 0x61 ? 0x62 : 0x61
  writeFileSync(first, damaged)
  const path = middleOf(first)
  rewrite(path, 'A')
  writeFileSync(join(base, 'same-size-1'), `${path}\n`)
  const refused = await gendsync('--changed', join(base, 'same-size-1'))
  assert.match(refused.stderr, /change hint not used \(.*is not the torrent its name says\)/)
  assert.deepEqual(await fromScratch(save, base), outputs())
  const shards = shardFiles()
  const paths = [middleOf(shards[0]), middleOf(shards[shards.length - 1])]
  for (const p of paths) rewrite(p, 'B')
  writeFileSync(join(base, 'same-size-2'), paths.join('\n') + '\n')
  const hinted = await gendsync('--changed', join(base, 'same-size-2'))
  assert.doesNotMatch(hinted.stderr, /not used/, 'the hint was used, not a full walk')
  assert.deepEqual(await fromScratch(save, base), outputs())
}

test('gendsync --changed with rsync --itemize-changes output: only changed files are read, outputs equal a full run', { timeout: 120_000 }, async t => {
  if (!hasRsync) return t.skip('rsync is not installed')
  await hintRoundTrip(t, 300)
})

test('gendsync --changed on a sharded repository: outputs equal a full run', { timeout: 600_000 }, async t => {
  if (!hasRsync) return t.skip('rsync is not installed')
  await hintRoundTrip(t, 34_000)
})

/**
 * A repository of 30,000 files under long folder names (the shards reach their size limit every
 * few thousand files), and gendsync run on it through the CLI.
 */
function paddedPoolRepo() {
  const base = tempDir()
  const save = join(base, 'web', 'pool')
  const home = join(base, 'home')
  mkdirSync(join(home, 'repos'), { recursive: true })
  writeFileSync(join(home, 'xync.conf'), `webroot=${join(base, 'web')}\n`)
  writeFileSync(join(home, 'repos', 'pool.conf'), `repo=pool\nsave=${save}\ndsync=true\n`)
  writePaddedPool(save, 30_000, 200)
  const gendsync = async (...args: string[]) => {
    const r = await runCli(['--home', home, '--json', 'gendsync', ...args])
    assert.equal(r.code, 0, r.stderr)
    return { ...JSON.parse(r.stdout) as { changed: boolean; hashedFiles: number; infoHash: string; shards?: { built: boolean; files: number; bytes: number }[] }, stderr: r.stderr }
  }
  return { base, save, gendsync }
}

/** Every file under .dsync/: its inode, mtime and SHA-256 (a file renamed over or written again shows). */
function dsyncFiles(save: string, skip: string[] = []): Map<string, string> {
  const out = new Map<string, string>()
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, name.name)
      const key = rel ? `${rel}/${name.name}` : name.name
      if (skip.includes(key)) continue
      if (name.isDirectory()) walk(path, key)
      else {
        const st = statSync(path)
        out.set(key, `${st.ino} ${st.mtimeMs} ${createHash('sha256').update(readFileSync(path)).digest('hex')}`)
      }
    }
  }
  walk(join(save, '.dsync'), '')
  return out
}

/**
 * A hinted run whose list comes out as the previous one (an empty hint, or paths that did not
 * change) writes nothing: no data.dsync, shard, index, caches or record written again
 * (src/manifest/hinted.ts, unchangedGeneration). Seen failing before that change: the tables and
 * lines caches were renamed over (new inodes) by an empty hint. A damaged shard file is still
 * noticed and rewritten (the outputs are checked, not trusted), as before.
 */
test('gendsync --changed with nothing changed writes nothing, and still repairs a damaged shard', { timeout: 300_000 }, async () => {
  const { base, save, gendsync } = paddedPoolRepo()
  const first = await gendsync()
  assert.ok(first.shards && first.shards.length > 1, 'a sharded repository')
  const before = dsyncFiles(save)

  writeFileSync(join(base, 'empty'), '')
  const empty = await gendsync('--changed', join(base, 'empty'))
  assert.doesNotMatch(empty.stderr, /not used/, 'the hint was used, not a full walk')
  assert.deepEqual([empty.changed, empty.hashedFiles, empty.infoHash], [false, 0, first.infoHash])
  // The summary names the same shards with the same sizes as the full run's.
  assert.deepEqual(empty.shards!.map(s => [s.files, s.bytes]), first.shards.map(s => [s.files, s.bytes]))
  assert.deepEqual(dsyncFiles(save), before, 'an empty hint wrote into .dsync/')

  // Paths named that did not change: read (their digests go to the hash cache), nothing else written.
  const some = readFileSync(join(save, '.dsync', 'data.dsync'), 'latin1').split('\n').filter(l => l.startsWith('f\t')).slice(100, 103)
    .map(l => l.split('\t').at(-1)!)
  writeFileSync(join(base, 'same'), some.join('\n') + '\n')
  const same = await gendsync('--changed', join(base, 'same'))
  assert.deepEqual([same.changed, same.hashedFiles], [false, 3])
  assert.deepEqual(dsyncFiles(save, ['hashcache']), new Map([...before].filter(([k]) => k !== 'hashcache')), 'unchanged paths wrote into .dsync/')

  // One byte of a shard file changed, same size: the hinted run must not keep it.
  const shardsDir = join(save, '.dsync', 'shards')
  const shard = join(shardsDir, readdirSync(shardsDir)[1])
  const good = readFileSync(shard)
  const bad = Buffer.from(good)
  bad[bad.length - 30] ^= 1
  writeFileSync(shard, bad)
  await gendsync('--changed', join(base, 'empty'))
  assert.deepEqual(readFileSync(shard), good, 'a damaged shard file was kept')
})

/**
 * A hinted run writes each rebuilt shard into the buffer of a previous shard file no later
 * shard reads, or into what an earlier rebuilt shard left of its buffer
 * (src/manifest/shard-rebuild.ts, OldShardPieces.spare). Changes in every other shard (one file
 * each, grown) leave kept shards between rebuilt ones; the outputs must be those of a first run
 * of a copy (a buffer taken while its bytes were still to be copied, or a kept shard's, would
 * show as a wrong shard).
 */
test('gendsync --changed rebuilding shards between kept ones: outputs equal a first run of a copy', { timeout: 600_000 }, async t => {
  if (!hasRsync) return t.skip('rsync is not installed')
  const { base, save, gendsync } = paddedPoolRepo()
  const first = await gendsync()
  const shards = first.shards?.length ?? 0
  assert.ok(shards >= 5, `five shards at least (${shards})`)
  const index = readTorrentInfo(readFileSync(join(save, '.dsync', 'pool.torrent')))
  const names = index.files.filter(f => !f.pad).slice(1).map(f => f.path)
  const changed: string[] = []
  for (let s = 0; s < shards; s += 2) {
    const files = readTorrentInfo(readFileSync(join(save, names[s]))).files.filter(f => !f.pad)
    const path = files[files.length >> 1].path
    writeFileSync(join(save, path), `${path} grown in shard ${s}\n`)
    changed.push(path)
  }
  writeFileSync(join(base, 'changes'), changed.join('\n') + '\n')
  const hinted = await gendsync('--changed', join(base, 'changes'))
  assert.doesNotMatch(hinted.stderr, /not used/, 'the hint was used, not a full walk')
  assert.deepEqual(hinted.shards!.map(s => s.built), first.shards!.map((_, s) => s % 2 === 0))
  assert.deepEqual(await fromScratch(save, base), outputsOf(save))
})

/**
 * New files early in a shard that ends at its size bound push that end, and the next shards'
 * size-bound ends, back a file or two: kept files cross from one previous shard into another, some of
 * them now ending a shard they did not end (or no longer ending one). The splice copies runs of
 * kept files at once (shard-rebuild.ts, keptInside) only inside both shards; a file ending either
 * is asked on its own, its pad entry coming or going. The outputs must be a first run's of a copy.
 */
test('gendsync --changed moving shard boundaries: outputs equal a first run of a copy', { timeout: 600_000 }, async t => {
  if (!hasRsync) return t.skip('rsync is not installed')
  const { base, save, gendsync } = paddedPoolRepo()
  const first = await gendsync()
  assert.ok((first.shards?.length ?? 0) >= 5, `five shards at least (${first.shards?.length})`)
  const index = readTorrentInfo(readFileSync(join(save, '.dsync', 'pool.torrent')))
  // The shard holding the most files ends at its size bound (one ending where a path hash says holds fewer).
  const counts = (r: typeof first) => r.shards!.map(s => s.files)
  const full = counts(first).indexOf(Math.max(...counts(first)))
  const names = index.files.filter(f => !f.pad).slice(1).map(f => f.path)
  const inShard = readTorrentInfo(readFileSync(join(save, names[full]))).files.filter(f => !f.pad)
  const folder = inShard[inShard.length >> 2].path.split('/').slice(0, -1).join('/')
  const changed: string[] = []
  for (let i = 0; i < 3; i++) {
    const path = `${folder}/${String(i).repeat(200)}_1.0_all.deb`
    writeFileSync(join(save, path), `added ${i}\n`)
    changed.push(path)
  }
  writeFileSync(join(base, 'changes'), changed.join('\n') + '\n')
  const hinted = await gendsync('--changed', join(base, 'changes'))
  assert.doesNotMatch(hinted.stderr, /not used/, 'the hint was used, not a full walk')
  t.diagnostic(`files per shard: ${counts(first).join(' ')} -> ${counts(hinted).join(' ')} (files added to shard ${full})`)
  // That shard and the next start or end elsewhere than before: both rebuilt, not kept.
  assert.ok(full + 1 < counts(first).length, 'the fullest shard is not the last')
  assert.ok(hinted.shards!.slice(full, full + 2).every(s => s.built), 'the shard with the new files and the next one rebuilt')
  assert.notEqual(counts(hinted)[full + 1], counts(first)[full + 1], 'the next shard holds other files')
  assert.deepEqual(await fromScratch(save, base), outputsOf(save))
})

test('gendsync --changed refuses a path outside the repository, naming the line', async () => {
  const base = tempDir()
  mkdirSync(join(base, 'home', 'repos'), { recursive: true })
  mkdirSync(join(base, 'web', 'r'), { recursive: true })
  writeFileSync(join(base, 'home', 'xync.conf'), `webroot=${join(base, 'web')}\n`)
  writeFileSync(join(base, 'home', 'repos', 'r.conf'), `repo=r\nsave=${join(base, 'web', 'r')}\ndsync=true\n`)
  writeFileSync(join(base, 'changes'), 'ok/file\n../etc/passwd\n')
  const r = await runCli(['--home', join(base, 'home'), 'gendsync', '--changed', join(base, 'changes')])
  assert.equal(r.code, 2)
  assert.match(r.stderr, /changes:2: not a path inside the repository/)
  assert.equal(r.stderr.trim().split('\n').length, 1)
})

/**
 * A kill between the commit's renames of data.dsync and of the index torrent leaves list N+1
 * beside index N. A hinted run must then not take index N for list N+1's index (it would copy
 * N's shards and piece hashes). The lists here have the same length, ending one byte into a
 * piece: that last piece is only the END line's newline, equal in both, and the END line's
 * checksum, which differs, is in the piece before.
 */
test('the previous index is known for its list by every piece holding the END line', () => {
  const P = 16384
  const list = (sum: string) => {
    const end = Buffer.from(`END\t${sum}\n`)
    return Buffer.concat([Buffer.alloc(2 * P + 1 - end.length, 'x'), end])
  }
  const indexed = list('a'.repeat(64))
  const other = list('b'.repeat(64))
  assert.equal(indexed.length % P, 1)
  assert.ok(indexed.subarray(2 * P).equals(other.subarray(2 * P)), 'the last pieces are equal')
  const save = tempDir('dsync-index-match-')
  const files = repoFiles(save, 'deb')
  mkdirSync(files.dir, { recursive: true })
  const shard = { infoHash: 'c'.repeat(40), torrent: Buffer.from('d4:infod6:lengthi1eee') }
  writeFileSync(files.torrent, buildIndexTorrent('deb', P, ['http://127.0.0.1:9/announce'], indexed, [shard]).torrent)
  const indexing = (bytes: Buffer) => shardsIndexing(files, { size: bytes.length, pieceLength: P, tail: from => bytes.subarray(from) })
  const same = indexing(indexed)
  assert.notEqual(typeof same, 'string', `the list the index was built from: ${String(same)}`)
  assert.deepEqual((same as { shards: string[] }).shards, [shard.infoHash])
  assert.equal(indexing(other), 'the previous index torrent does not match data.dsync')
})
