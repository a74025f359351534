import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { STAGE_DIRS } from '../src/sync/part-writer.js'
import { INLINE_MAX_BYTES } from '../src/sync/stage-inline.js'
import { startShardedHost } from '../testbed/host.js'
import { assertSameTree } from '../testbed/same-tree.js'
import { hasLibtorrent, pickPort, startLibtorrentSeeder } from '../testbed/seeders.js'
import { stagingFiles, tempDir } from '../testbed/tree.js'
import { makeUpstream, pullCli, type Upstream } from '../testbed/upstream.js'

/**
 * Which pulls start worker threads (stage-inline.ts, docs/SCALE.md "Update memory at 1M"): an
 * update of a few files stages on the event loop and starts none (each thread is ~9 MiB of the
 * client's peak); a pull over the threshold keeps its stage workers. Real CLI pulls from a
 * real libtorrent seeder on 127.0.17.x; which modules each loaded (worker threads included) is
 * logged by Node's module hooks (testbed/module-log.ts).
 */
const SKIP = hasLibtorrent ? false : 'python3-libtorrent is not installed (apt-get install python3-libtorrent)'
const MODULE_LOG = fileURLToPath(new URL('../testbed/module-log.js', import.meta.url))

/** A pull, and the worker-thread modules of dsync it loaded (src/sync/stage-worker.js ...). */
async function pullLoggingWorkers(up: Upstream, dest: string, peer: string): Promise<string[]> {
  const log = join(tempDir('dsync-modules-'), 'modules.txt')
  const r = await pullCli(up.torrent, dest, [peer], [], { NODE_OPTIONS: `--import ${MODULE_LOG}`, DSYNC_TEST_MODULE_LOG: log })
  assert.equal(r.code, 0, r.stderr)
  assert.ok(r.summary!.filesFetched > 0, 'the pull fetched files')
  const workers = readFileSync(log, 'utf8').split('\n').filter(u => /\/dist\/src\/.*-worker\.js$/.test(u)).map(u => u.replace(/^.*\/dist\//, ''))
  rmSync(log)
  return [...new Set(workers)].sort()
}

function smallRepo(tag: string): Record<string, Buffer | string> {
  const files: Record<string, Buffer | string> = {}
  for (let i = 0; i < 40; i++) files[`pool/main/p${i % 4}/pkg${i}.deb`] = Buffer.alloc(2000 + i * 997, `${tag}${i}`)
  files['pool/main/big/image.iso'] = randomBytes(3 << 20)
  files['dists/stable/Release'] = `Suite: stable ${tag}\n`
  return files
}

test('a small bootstrap and its update stage on the event loop: no worker thread starts; DEST converges', { skip: SKIP, timeout: 120_000 }, async () => {
  const up = await makeUpstream(smallRepo('v1'))
  const seeder = await startLibtorrentSeeder(up.torrent, up.webroot, '127.0.17.2')
  const dest = join(tempDir(), 'mirror')
  // The bootstrap's new folders are made ahead by a thread of their own (new-folders.ts): not a staging one.
  const first = await pullLoggingWorkers(up, dest, seeder.address)
  assert.deepEqual(first.filter(w => w !== 'src/sync/folders-worker.js'), [], `worker threads of the bootstrap: ${first.join(' ')}`)
  await assertSameTree(up.save, dest)
  seeder.kill()

  // The update: a few files change (no new folder).
  for (let i = 0; i < 40; i += 7) writeFileSync(join(up.save, `pool/main/p${i % 4}/pkg${i}.deb`), `changed ${i}\n`.repeat(300))
  writeFileSync(join(up.save, 'pool/main/big/image.iso'), randomBytes(3 << 20))
  await up.regenerate()
  const seeder2 = await startLibtorrentSeeder(up.torrent, up.webroot, '127.0.17.3')
  const update = await pullLoggingWorkers(up, dest, seeder2.address)
  assert.deepEqual(update, [], `worker threads of the update: ${update.join(' ')}`)
  await assertSameTree(up.save, dest)
  assert.deepEqual(stagingFiles(dest), [])
  seeder2.kill()
})

test('a pull over the threshold keeps its stage worker threads; DEST converges', { skip: SKIP, timeout: 180_000 }, async () => {
  const up = await makeUpstream({ 'images/big.iso': randomBytes(INLINE_MAX_BYTES + (1 << 20)), 'dists/Release': 'Suite: x\n' })
  const seeder = await startLibtorrentSeeder(up.torrent, up.webroot, '127.0.17.4')
  const dest = join(tempDir(), 'mirror')
  const workers = await pullLoggingWorkers(up, dest, seeder.address)
  assert.ok(workers.includes('src/sync/stage-worker.js'), `worker threads of the pull: ${workers.join(' ')}`)
  await assertSameTree(up.save, dest)
  seeder.kill()
})

test('a sharded bootstrap starts its stage workers once, not once per shard; DEST converges', { timeout: 600_000 }, async () => {
  // One transfer per shard (shards.ts transferFromShards), each with its own stage writer: the
  // workers a finished transfer closes are handed to the next (stage-writer.ts, park), where each
  // thread started afresh compiled Node's internals again (~40 ms of CPU apiece, ~30 threads in a
  // 200,000-file bootstrap). Every thread that loads stage-worker.js is one line of the log.
  const { host, save, gen } = await startShardedHost('127.0.17.20', 'sharded', pickPort())
  const dest = join(tempDir(), 'mirror')
  const log = join(tempDir('dsync-modules-'), 'modules.txt')
  // Threads for every shard's transfer, however few files it has (stage-inline.ts).
  const r = await pullCli(`magnet:?xt=urn:btih:${gen.infoHash}&dn=sharded`, dest, [`${host.address}:${host.port}`], [],
    { NODE_OPTIONS: `--import ${MODULE_LOG}`, DSYNC_TEST_MODULE_LOG: log, DSYNC_STAGE_THREADS: '1' })
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.summary!.filesFetched, 10_000)
  const starts = readFileSync(log, 'utf8').split('\n').filter(u => /\/dist\/src\/sync\/stage-worker\.js$/.test(u)).length
  assert.equal(starts, STAGE_DIRS, `stage worker threads started for ${gen.shards.length} shards`)
  await assertSameTree(save, dest)
  assert.deepEqual(stagingFiles(dest), [])
})
