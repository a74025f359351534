import assert from 'node:assert/strict'
import { copyFileSync, linkSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { FdCache } from '../src/host/fd-cache.js'
import { GenerationError, loadGeneration, type Generation } from '../src/host/generation.js'
import { PieceReader } from '../src/host/piece-reader.js'
import { parseManifest } from '../src/manifest/format.js'
import { MANIFEST_TORRENT_PATH } from '../src/manifest/paths.js'
import { layoutFiles } from '../src/torrent/layout.js'
import { readTorrentInfo } from '../src/torrent/read.js'
import { shardTorrentPath } from '../src/torrent/shards.js'
import { runCli } from '../testbed/cli.js'
import { makeHome, OLD_MTIME, tempDir, writeTree } from '../testbed/tree.js'

/**
 * The host loads a generation without an object per file (typed tables over data.dsync's
 * bytes, torrents' file lists walked in place, the hash cache merged for inodes). These
 * check it against the parsed forms, file by file, and that every difference between the
 * torrents and data.dsync is still refused with the reason named.
 */
async function gendsync(home: string, ...args: string[]): Promise<void> {
  const r = await runCli(['--home', home, '--json', 'gendsync', ...args])
  assert.equal(r.code, 0, r.stderr)
}

/** What the parsed route says each file segment must be: path, offset, length, mtime, inode. */
function expectedFiles(save: string, layout: { path: string; length: number; pad: boolean; offset: number }[]) {
  const manifest = parseManifest(readFileSync(join(save, '.dsync', 'data.dsync')), 'data.dsync')
  const mtime = new Map(manifest.entries.map(e => [e.path, e.mtime]))
  return layout.filter(f => !f.pad && !f.path.startsWith('.dsync/')).map(f => ({
    path: f.path, offset: f.offset, length: f.length, mtime: mtime.get(f.path), ino: statSync(join(save, f.path)).ino,
  }))
}

function fileSegments(gen: Generation) {
  return gen.segments.list().filter(s => s.source === 'file').map(s => ({ path: s.path, offset: s.offset, length: s.length, mtime: s.mtime, ino: s.ino }))
}

test('one torrent: every segment as the parsed layout says, odd names included; another generation\'s torrent is refused', async () => {
  const base = tempDir()
  const files: Record<string, string> = {
    'pool/main/a/apt/apt_2.9_amd64.deb': 'x'.repeat(40_000),
    'pool/main/a/apt/apt 2.9 with spaces.deb': 'spaces',
    'pool/odd/tab\there.deb': 'tab',
    'pool/odd/back\\slash.deb': 'backslash',
    'pool/odd/new\nline.deb': 'newline',
    'pool/odd/한글.deb': 'hangul',
    'pool/odd/empty.deb': '',
    'dists/stable/Release': 'Origin: test\n',
  }
  const { home, webroot } = makeHome(base, { deb: files })
  const save = join(webroot, 'deb')
  await gendsync(home)
  const gen = loadGeneration('deb', save)
  const info = readTorrentInfo(readFileSync(join(save, '.dsync', 'deb.torrent')))
  const layout = layoutFiles(info.files.filter(f => !f.pad).map(f => ({ path: f.path, length: f.length })), gen.pieceLength)
  assert.deepEqual(fileSegments(gen), expectedFiles(save, layout))
  assert.equal(gen.segments.list()[0].source, 'manifest')
  assert.equal(gen.totalLength, layout.at(-1)!.offset + layout.at(-1)!.length)
  // Every byte position maps to the segment holding it.
  for (const seg of gen.segments.list()) assert.equal(gen.segments.get(gen.segments.at(seg.offset + seg.length - 1)).path, seg.path)

  // A file renamed (same size): data.dsync of the new generation, the torrent of the old one.
  const oldTorrent = readFileSync(join(save, '.dsync', 'deb.torrent'))
  renameSync(join(save, 'pool/odd/한글.deb'), join(save, 'pool/odd/한국.deb'))
  await gendsync(home)
  writeFileSync(join(save, '.dsync', 'deb.torrent'), oldTorrent)
  assert.throws(() => loadGeneration('deb', save),
    (err: Error) => err instanceof GenerationError && /deb\.torrent: the torrent: file \d+ is "pool\/odd\/한글\.deb" \(6 bytes\), data\.dsync implies "pool\/odd\/한국\.deb" \(6 bytes\)/.test(err.message))
})

test('a copy swapped in with the same size and mtime, hashed by gendsync --changed: its new inode is the one checked', async () => {
  const base = tempDir()
  const files: Record<string, string> = {}
  for (let i = 0; i < 50; i++) files[`pool/main/p${i % 5}/pkg${i}.deb`] = `package ${i}\n`
  const { home, webroot } = makeHome(base, { deb: files })
  const save = join(webroot, 'deb')
  await gendsync(home)
  // A copy (new inode) with other bytes, the same size and the same mtime: only a hinted run learns of it.
  const victim = 'pool/main/p2/pkg12.deb'
  const before = statSync(join(save, victim)).ino
  writeFileSync(join(save, 'copy.tmp'), 'package X\n'.padEnd(`package 12\n`.length, '\n'))
  utimesSync(join(save, 'copy.tmp'), OLD_MTIME, OLD_MTIME)
  renameSync(join(save, 'copy.tmp'), join(save, victim))
  const after = statSync(join(save, victim)).ino
  assert.notEqual(after, before)
  writeFileSync(join(base, 'changes'), `${victim}\n`)
  await gendsync(home, '--changed', join(base, 'changes'))
  // The hinted run appended a line for the file; the earlier line (old inode) must lose.
  const cache = readFileSync(join(save, '.dsync', 'hashcache'), 'utf8').trim().split('\n')
  assert.ok(cache.at(-1)!.endsWith(`\t${victim}`), 'gendsync --changed appends to the cache')
  const seg = loadGeneration('deb', save).segments.list().find(s => s.path === victim)!
  assert.equal(seg.ino, after)
})

/** `count` tiny files under long folder names: a few thousand need two shards. */
function writePool(root: string, count: number, pad: number): void {
  const files: Record<string, string> = {}
  for (let i = 0; i < count; i++) {
    files[join('pool', 'main', `${'p'.repeat(pad)}${Math.floor(i / 500)}`, `${'k'.repeat(pad)}${Math.floor(i / 10)}`, `f${i}_1.0_amd64.deb`)] = `file ${i}\n`
  }
  writeTree(root, files)
}

test('sharded: the index and every shard as their torrents say; a shard of another generation is refused, naming it', { timeout: 300_000 }, async () => {
  const base = tempDir()
  const { home, webroot } = makeHome(base, { big: {} })
  const save = join(webroot, 'big')
  writePool(save, 10_000, 200)
  await gendsync(home)
  const gen = loadGeneration('big', save)
  assert.ok(gen.shards && gen.shards.length >= 2, 'the repository is sharded')
  const shardDir = join(save, '.dsync', 'shards')
  for (const shard of gen.shards) {
    const info = readTorrentInfo(readFileSync(join(shardDir, `${shard.infoHash}.torrent`)))
    const layout = layoutFiles(info.files.filter(f => !f.pad).map(f => ({ path: f.path, length: f.length })), gen.pieceLength)
    assert.deepEqual(fileSegments(shard), expectedFiles(save, layout))
    assert.equal(shard.files, info.files.filter(f => !f.pad).length)
  }
  assert.deepEqual(gen.segments.list().filter(s => s.source !== 'pad').map(s => s.path),
    [MANIFEST_TORRENT_PATH, ...gen.shards.map(s => shardTorrentPath(s.infoHash))])
  assert.equal(gen.shards.reduce((n, s) => n + s.files, 0), 10_000)

  // The last file renamed (same size): the new generation's torrents beside the old data.dsync.
  const dsync = join(save, '.dsync')
  const kept = join(base, 'gen1')
  mkdirSync(kept)
  copyFileSync(join(dsync, 'data.dsync'), join(kept, 'data.dsync'))
  const last = gen.shards.at(-1)!.segments.list().filter(s => s.source === 'file').at(-1)!.path
  renameSync(join(save, last), join(save, last.replace(/f(\d+)_1\.0/, 'g$1_1.0')))
  await gendsync(home)
  copyFileSync(join(kept, 'data.dsync'), join(dsync, 'data.dsync'))
  const changed = readdirSync(shardDir).find(f => !gen.shards!.some(s => `${s.infoHash}.torrent` === f))!.replace('.torrent', '')
  assert.throws(() => loadGeneration('big', save), (err: Error) => err instanceof GenerationError &&
    err.message.includes(`shard ${changed}: file`) && err.message.includes(`data.dsync implies "${last}"`))
  rmSync(kept, { recursive: true })
})

test('a host loading the inodes in the background serves no file before it can check them', async () => {
  const base = tempDir()
  const files: Record<string, string> = {}
  for (let i = 0; i < 200; i++) files[`pool/main/p${i % 7}/pkg${i}.deb`] = `package ${i}\n`
  const { home, webroot } = makeHome(base, { deb: files })
  const save = join(webroot, 'deb')
  await gendsync(home)
  // Swapped after gendsync for another file (a hardlink elsewhere) with the same size and mtime.
  const victim = 'pool/main/p3/pkg10.deb'
  writeFileSync(join(base, 'other'), 'package X\n'.padEnd(`package 10\n`.length, '\n'))
  utimesSync(join(base, 'other'), OLD_MTIME, OLD_MTIME)
  rmSync(join(save, victim))
  linkSync(join(base, 'other'), join(save, victim))
  const gen = loadGeneration('deb', save, { inodesLater: true })
  assert.ok(gen.inodesLoaded, 'the inodes are still being read')
  const reader = new PieceReader(gen, new FdCache(8))
  const seg = gen.segments.list().find(s => s.path === victim)!
  // Asked at once, before the cache was read: refused for the inode, not served.
  await assert.rejects(reader.read(seg.offset / gen.pieceLength, 0, seg.length), /replaced since gendsync/)
  const good = gen.segments.list().find(s => s.path === 'pool/main/p3/pkg17.deb')!
  assert.equal((await reader.read(good.offset / gen.pieceLength, 0, good.length)).toString(), 'package 17\n')
})
