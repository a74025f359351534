import assert from 'node:assert/strict'
import { cpSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { applyDeltas, bufferReader, fileReader } from '../src/generation/delta-apply.js'
import { makeDelta, parseDelta } from '../src/generation/delta.js'
import { indexedShards } from '../src/torrent/shards.js'
import { readTorrentInfo } from '../src/torrent/read.js'
import { beforeList } from '../src/sync/old-side.js'
import { windowedSplice } from '../src/sync/shard-windows.js'
import { runCli } from '../testbed/cli.js'
import { OLD_MTIME, tempDir, writePool } from '../testbed/tree.js'

/**
 * The client's shard splice window by window (src/sync/shard-windows.ts): after an update of a
 * sharded repository the new list, read from disk twice, and DEST's previous lines at the
 * changed paths give the new shard torrents, byte for byte gendsync's, with the list cut into
 * windows where a new shard and a previous one start at the same path (one window per shard
 * here: the changes move no boundary). A splice that fails falls back, in the client, to both
 * lists parsed whole; so this checks the splice itself, not just the torrents a pull ends with.
 */
const FILES = 20_000
const PAD = 100

test('shard torrents spliced window by window from the list on disk equal gendsync\'s', { timeout: 300_000 }, async () => {
  const base = tempDir('dsync-shard-windows-')
  const home = join(base, 'home')
  const save = join(base, 'web', 'pool')
  mkdirSync(join(home, 'repos'), { recursive: true })
  writeFileSync(join(home, 'xync.conf'), `webroot=${join(base, 'web')}\n`)
  writeFileSync(join(home, 'repos', 'pool.conf'), 'repo=pool\nsave=' + save + '\ndsync=true\n')
  writePool(save, FILES, PAD)
  const gendsync = async () => {
    const r = await runCli(['--home', home, '--json', 'gendsync'])
    assert.equal(r.code, 0, r.stderr)
  }
  const shardsOf = () => indexedShards(readTorrentInfo(readFileSync(join(save, '.dsync', 'pool.torrent'))).files)!
  await gendsync()
  const previous = readFileSync(join(save, '.dsync', 'data.dsync'))
  const oldShards = shardsOf()
  const trackers = readTorrentInfo(readFileSync(join(save, '.dsync', 'pool.torrent'))).trackers
  assert.ok(oldShards.length >= 3, `sharded (${oldShards.length} shards)`)
  const held = join(base, 'previous-shards')
  cpSync(join(save, '.dsync', 'shards'), held, { recursive: true })

  // A few files changed in every shard (another length, a later mtime), none added or removed.
  const later = new Date(OLD_MTIME.getTime() + 3_600_000)
  for (let i = 37; i < FILES; i += 4_001) {
    const file = join(save, 'pool', 'main', `${'p'.repeat(PAD)}${Math.floor(i / 500)}`, `${'k'.repeat(PAD)}${Math.floor(i / 10)}`, `f${i}_1.0_amd64.deb`)
    writeFileSync(file, `file ${i}, changed\n`)
    utimesSync(file, later, later)
  }
  await gendsync()
  const next = join(save, '.dsync', 'data.dsync')
  const named = shardsOf()
  const before = applyDeltas(bufferReader(previous), [parseDelta(makeDelta(1, previous, readFileSync(next)))]).before
  assert.ok(before.size >= 4, `${before.size} changed paths`)

  const got: string[] = []
  const built: boolean[] = []
  const stats = { windows: 0 }
  const pieceLength = Number(/\npiece-length (\d+)\n/.exec(readFileSync(next, 'latin1').slice(0, 200))![1])
  const out = windowedSplice({
    list: () => fileReader(next), changed: beforeList(before), pieceLength, save, shardsDir: held, name: 'pool', trackers,
    named: named.length, oldShards, stats,
    onShard: (shard, s) => {
      got[s] = shard.infoHash
      built[s] = shard.built
    },
  })
  assert.equal(typeof out, 'object', `spliced: ${String(out)}`)
  assert.deepEqual(got, named, 'every shard has the infohash gendsync gave it')
  assert.equal(stats.windows, named.length, 'one window per shard: the list never held whole')
  assert.ok(built.every(b => b), 'every shard had a changed file: each was spliced, none kept')
  // Nothing of the previous generation was changed.
  assert.deepEqual(readdirSync(held).sort(), oldShards.map(ih => `${ih}.torrent`).sort())
})
