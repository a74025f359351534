import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { chmodSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { assertSameTree } from '../testbed/same-tree.js'
import { hasLibtorrent, startLibtorrentSeeder } from '../testbed/seeders.js'
import { tempDir } from '../testbed/tree.js'
import { makeUpstream, pullCli } from '../testbed/upstream.js'

// A fetched file gets its upstream mode in staging, on the stage worker (part-writer.ts): a
// one-piece file is created with that mode when it lets us write it, and only then skips the
// fchmod; the umask, a mode without u+w, and a multi-piece file still get one. The apply does
// not chmod such a file again, so a mode wrong in staging would stay wrong in DEST.
// Addresses 127.0.16.x.

const MODES: Record<string, number> = {
  'pool/a/plain.deb': 0o644,
  'pool/a/group-writable.deb': 0o664, // the umask (022) takes g+w off at creation
  'pool/a/script.sh': 0o755,
  'pool/a/private.key': 0o600,
  'pool/a/read-only.txt': 0o444, // no u+w: created 0644, then chmod
  'pool/b/big-group.iso': 0o664, // several pieces: written as a .part
}

test('fetched files end with their upstream modes, one-piece and multi-piece, under a umask', {
  skip: hasLibtorrent ? false : 'python3-libtorrent is not installed', timeout: 180_000,
}, async () => {
  const files: Record<string, Buffer> = {}
  for (const path of Object.keys(MODES)) files[path] = randomBytes(path.endsWith('.iso') ? 3 << 20 : 1500)
  const up = await makeUpstream({ ...files, 'dists/Release': 'Suite: x\n' })
  for (const [path, mode] of Object.entries(MODES)) chmodSync(join(up.save, path), mode)
  await up.regenerate()
  const seeder = await startLibtorrentSeeder(up.torrent, up.webroot, '127.0.16.2')
  const dest = join(tempDir(), 'mirror')
  const previous = process.umask(0o022)
  try {
    const run = await pullCli(up.torrent, dest, [seeder.address])
    assert.equal(run.code, 0, run.stderr)
  } finally {
    process.umask(previous)
  }
  await assertSameTree(up.save, dest)
  for (const [path, mode] of Object.entries(MODES)) {
    assert.equal((statSync(join(dest, path)).mode & 0o7777).toString(8), mode.toString(8), path)
  }
})
