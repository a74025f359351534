import assert from 'node:assert/strict'
import { existsSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { craftRepo, hostileInfos, rawInfo, sha256, torrentOf } from '../testbed/craft.js'
import { hasLibtorrent, startLibtorrentSeeder } from '../testbed/seeders.js'
import { tempDir } from '../testbed/tree.js'
import { pullCli } from '../testbed/upstream.js'

// Hostile or broken upstreams: each is refused with one line naming the source and the
// reason, exit 4, and nothing is written (DEST is not even created).

const MTIME = 1700000000

const torrentCases: [string, () => Buffer, RegExp][] = [
  ...hostileInfos.map(([name, info, reason]): [string, () => Buffer, RegExp] => [name, () => torrentOf(info()), reason]),
  ['truncated', () => torrentOf(rawInfo([{ path: ['.dsync', 'data.dsync'], length: 100 }])).subarray(0, 60), /malformed torrent/],
  ['not bencode at all', () => Buffer.from('<html>not found</html>'), /malformed torrent/],
]

for (const [name, make, reason] of torrentCases) {
  test(`a torrent with ${name} is refused before anything is written`, async () => {
    const base = tempDir()
    const file = join(base, 'evil.torrent')
    writeFileSync(file, make())
    const dest = join(base, 'mirror')
    const r = await pullCli(file, dest, ['127.0.0.1:9'])
    assert.equal(r.code, 4, r.stderr)
    assert.match(r.stderr, reason)
    assert.match(r.stderr, /evil\.torrent/)
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
    assert.doesNotMatch(r.stderr, /\n\s+at /)
    assert.ok(!existsSync(dest), 'DEST was not created')
  })
}

const hello = Buffer.from('hello')
/** Seven 16 KiB pieces and a bit. */
const big = Buffer.from(Array.from({ length: 7 * 16384 + 1000 }, (_, i) => (i * 7919) & 0xff))
const fileLine = (path: string, data: Buffer) => `f\t0644\t${data.length}\t${MTIME}\t${sha256(data)}\t${path}`

const manifestCases: [string, Parameters<typeof craftRepo>[2], RegExp][] = [
  ['a path with ..', { entryLines: [`l\t0777\t1\t${MTIME}\t-\t../escape\tx`], torrentFiles: {} }, /unsafe or malformed path/],
  ['a path through a symlink', {
    entryLines: [`l\t0777\t4\t${MTIME}\t-\tlink\t/tmp`, fileLine('link/file', hello)], torrentFiles: { 'link/file': hello },
  }, /parent folder is not listed as a directory/],
  ['an entry under .dsync/', { entryLines: [`d\t0755\t0\t${MTIME}\t-\t.dsync`, fileLine('.dsync/lock', hello)], torrentFiles: { '.dsync/lock': hello } }, /reserved path/],
  ['a wrong END checksum', { entryLines: [fileLine('a.txt', hello)], torrentFiles: { 'a.txt': hello }, badChecksum: true }, /checksum mismatch/],
  ['a file list that differs from the torrent', { entryLines: [fileLine('a.txt', Buffer.from('hello!'))], torrentFiles: { 'a.txt': hello } }, /does not match its torrent/],
  ['a SHA-256 that does not match the file the pieces describe', {
    entryLines: [`f\t0644\t5\t${MTIME}\t${sha256('other')}\ta.txt`], torrentFiles: { 'a.txt': hello },
  }, /content does not match its SHA-256/],
  // Hashed as its pieces arrive, on the stage worker, never re-read: the check must still bite.
  ['a SHA-256 that does not match a file of many pieces', {
    entryLines: [`f\t0644\t${big.length}\t${MTIME}\t${sha256(Buffer.concat([big.subarray(1), Buffer.from('x')]))}\tbig.bin`], torrentFiles: { 'big.bin': big },
  }, /big\.bin: content does not match its SHA-256/],
  ['a header that lies about its counts', { entryLines: [fileLine('a.txt', hello)], torrentFiles: { 'a.txt': hello }, header: { files: 7 } }, /header says files 7/],
]

for (const [name, spec, reason] of manifestCases) {
  test(`a data.dsync with ${name}, served by a real seeder, is refused with nothing written`, {
    skip: hasLibtorrent ? false : 'python3-libtorrent is not installed', timeout: 60_000,
  }, async () => {
    const base = tempDir()
    const torrent = craftRepo(base, 'evil', spec)
    const seeder = await startLibtorrentSeeder(torrent, base, '127.0.0.6')
    const dest = join(base, 'mirror')
    const r = await pullCli(torrent, dest, [seeder.address])
    assert.equal(r.code, 4, r.stderr)
    assert.match(r.stderr, reason)
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
    // Content is checked as it arrives: DEST may hold .dsync/staging, never a live file.
    assert.ok(!existsSync(dest) || readdirSync(dest).every(n => n === '.dsync'), 'nothing in the live tree')
  })
}
