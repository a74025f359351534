import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { DsyncError, ExitCode } from '../src/errors.js'
import { parseManifest, serializeManifest } from '../src/manifest/format.js'
import { repoFiles } from '../src/manifest/paths.js'
import type { Swarm } from '../src/swarm/swarm.js'
import { loadShards } from '../src/sync/shards.js'
import { layoutOf } from '../src/sync/torrent-check.js'
import { pieceMap } from '../src/torrent/piece-map.js'
import { readTorrentInfo } from '../src/torrent/read.js'
import { indexedShards, MAX_INFO_BYTES, shardStarts, SINGLE_MAX_FILES } from '../src/torrent/shards.js'
import { runCli } from '../testbed/cli.js'
import { HOST_PORT, prepareHost, startHost, startShardedHost } from '../testbed/host.js'
import { libtorrentMissing } from '../testbed/leecher.js'
import { tempDir, writePool } from '../testbed/tree.js'

const LT_SHARDS = fileURLToPath(new URL('../../testbed/lt_sharded.py', import.meta.url))
/** libtorrent's defaults: a .torrent over 10 MB or 3M bencode tokens is refused. */
const LT_MAX_BYTES = 10_000_000
const LT_MAX_TOKENS = 3_000_000

/** Bencode tokens as libtorrent counts them (every value, and each list/dict end). */
function countTokens(buf: Buffer): number {
  let tokens = 0
  let pos = 0
  while (pos < buf.length) {
    const c = buf[pos]
    tokens++
    if (c === 0x64 || c === 0x6c || c === 0x65) pos++
    else if (c === 0x69) pos = buf.indexOf(0x65, pos) + 1
    else {
      const colon = buf.indexOf(0x3a, pos)
      pos = colon + 1 + Number(buf.toString('latin1', pos, colon))
    }
  }
  return tokens
}

function ltSharded(args: Record<string, unknown>): Promise<{ ok: boolean; shards: number; files: number; error: string | null }> {
  return new Promise((resolve, reject) => {
    execFile('/usr/bin/python3', [LT_SHARDS, JSON.stringify(args)], { timeout: 900_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`libtorrent failed: ${err.message} ${stderr}`))
      resolve(JSON.parse(stdout.trim().split('\n').pop()!))
    })
  })
}

function summary(stdout: string): unknown {
  return JSON.parse(stdout.trim().split('\n').filter(l => l.includes('"summary"')).pop()!)
}

function sameTree(a: string, b: string, rel = ''): number {
  let files = 0
  for (const name of readdirSync(join(a, rel))) {
    if (rel === '' && name === '.dsync') continue
    const p = rel ? `${rel}/${name}` : name
    if (statSync(join(a, p)).isDirectory()) files += sameTree(a, b, p)
    else {
      assert.ok(readFileSync(join(a, p)).equals(readFileSync(join(b, p))), `${p} differs`)
      files++
    }
  }
  return files
}

test('shard boundaries: a small repository is one torrent; an insertion moves no boundary away from it', () => {
  const paths = Array.from({ length: 200_000 }, (_, i) => `pool/main/p${Math.floor(i / 500)}/pkg${Math.floor(i / 10)}/f${i}_1.0_amd64.deb`).sort()
  const files = paths.map(path => ({ path, length: 1000 }))
  assert.deepEqual(shardStarts(files.slice(0, 20_000), 16384), [0])
  assert.ok(shardStarts(files.slice(0, SINGLE_MAX_FILES + 1).map(f => ({ ...f, length: 16384 })), 16384).length > 1, "over the file count: sharded")
  const before = shardStarts(files, 16384)
  assert.ok(before.length >= 4, `${before.length} shards`)
  // 50 new files in the middle of the third shard: boundaries before it stay, after it move by 50.
  const at = Math.floor((before[2] + before[3]) / 2)
  const inserted = [...files.slice(0, at), ...Array.from({ length: 50 }, (_, i) => ({ path: `${files[at].path}.new${i}`, length: 1000 })), ...files.slice(at)]
  const after = shardStarts(inserted, 16384)
  assert.deepEqual(after.filter(s => s <= at), before.filter(s => s <= at))
  assert.deepEqual(after.filter(s => s > at).map(s => s - 50), before.filter(s => s > at))
  // Long paths: a forced cut keeps every shard under the estimate's cap.
  const long = paths.map(path => ({ path: `${'deep/'.repeat(60)}${path}`, length: 70_000 }))
  const starts = shardStarts(long, 16384)
  assert.ok(starts.length > before.length, 'long paths need more shards')
})

test('libtorrent alone bootstraps a 100,000-file repository from a dsync host through the shard torrents', { timeout: 1_200_000 }, async t => {
  const missing = libtorrentMissing()
  if (missing) return t.skip(missing)
  const host = await prepareHost('127.0.3.110', {})
  const save = join(host.webroot, 'pool100k')
  writePool(save, 100_000)
  writeFileSync(join(host.home, 'repos', 'pool100k.conf'), `repo=pool100k\nsave=${save}\ndsync=true\n`)
  const g = await host.cli('--json', 'gendsync')
  assert.equal(g.code, 0, g.stderr)
  const gen = JSON.parse(g.stdout) as { infoHash: string; magnet: string; shards?: { infoHash: string; file: string; files: number }[] }
  assert.ok(gen.shards && gen.shards.length >= 2, 'the repository is sharded')
  assert.equal(gen.shards.reduce((s, x) => s + x.files, 0), 100_000)
  for (const file of [join(save, '.dsync', 'pool100k.torrent'), ...gen.shards.map(s => s.file)]) {
    const bytes = readFileSync(file)
    assert.ok(bytes.length <= MAX_INFO_BYTES * 1.1 && bytes.length < LT_MAX_BYTES, `${file}: ${bytes.length} bytes`)
    assert.ok(countTokens(bytes) < LT_MAX_TOKENS / 2, `${file}: ${countTokens(bytes)} tokens`)
  }
  const index = readTorrentInfo(readFileSync(join(save, '.dsync', 'pool100k.torrent')))
  assert.deepEqual(index.files.filter(f => !f.pad).map(f => f.path),
    ['.dsync/data.dsync', ...gen.shards.map(s => `.dsync/shards/${s.infoHash}.torrent`)])
  await startHost(host, ['pool100k'])
  // The shard .torrent files are on the host's HTTP API too.
  const info = await (await fetch(`http://127.0.3.110:${HOST_PORT}/pool100k/`)).json() as { shards: { infoHash: string; torrent: string }[] }
  assert.deepEqual(info.shards.map(s => s.infoHash), gen.shards.map(s => s.infoHash))
  const shardBytes = Buffer.from(await (await fetch(`http://127.0.3.110:${HOST_PORT}${info.shards[0].torrent}`)).arrayBuffer())
  assert.ok(shardBytes.equals(readFileSync(gen.shards[0].file)))

  const dest = tempDir()
  const r = await ltSharded({ magnet: gen.magnet, save: dest, peers: [`127.0.3.110:${HOST_PORT}`], bind: '127.0.3.111', timeout: 900 })
  assert.ok(r.ok, JSON.stringify(r))
  assert.equal(r.shards, gen.shards.length)
  assert.equal(sameTree(save, join(dest, 'pool100k')), 100_000)
  assert.ok(readFileSync(join(dest, 'pool100k', '.dsync', 'data.dsync')).equals(readFileSync(join(save, '.dsync', 'data.dsync'))))
})

test('dsync pull bootstraps a sharded repository, then an update fetches the changed files from their shards', { timeout: 1_200_000 }, async t => {
  // 10,000 files with 450-byte paths: a torrent of ~5 MB, so two shards.
  const { host, save, gen: first } = await startShardedHost('127.0.3.112', 'pool10k')
  const dest = join(tempDir(), 'mirror')
  const pull = (...extra: string[]) => runCli(['--json', 'pull', `dtp://127.0.3.112:${HOST_PORT}/pool10k`, dest, '--bind', '127.0.3.113', ...extra])
  const boot = await pull()
  assert.equal(boot.code, 0, boot.stderr)
  assert.equal(sameTree(save, dest), 10_000)
  t.diagnostic(`bootstrap: ${(summary(boot.stdout) as { seconds: number }).seconds} s`)

  // One changed file and one new one beside it: the last shard's range.
  const pkg = join(save, 'pool', 'main', `${'p'.repeat(200)}9`, `${'k'.repeat(200)}499`)
  writeFileSync(join(pkg, 'f4999_1.0_amd64.deb'), 'changed content\n')
  writeFileSync(join(pkg, 'f4999_1.1_amd64.deb'), 'file 40000\n')
  const g2 = await host.cli('--json', 'gendsync')
  assert.equal(g2.code, 0, g2.stderr)
  const second = JSON.parse(g2.stdout) as { shards: { infoHash: string }[] }
  const kept = second.shards.filter(s => first.shards!.some(f => f.infoHash === s.infoHash))
  assert.equal(kept.length, second.shards.length - 1, 'only the shard holding the change has a new infohash')
  assert.equal((await host.cli('reload')).code, 0)
  // The client starts once the host serves the new generation (it loads it on reload).
  const newHash = (JSON.parse(g2.stdout) as { infoHash: string }).infoHash
  while ((await (await fetch(`http://127.0.3.112:${HOST_PORT}/pool10k/`)).json() as { infoHash: string }).infoHash !== newHash) {
    await new Promise(r => setTimeout(r, 200))
  }
  let upd = await pull()
  if (upd.code === 6) {
    // A network failure is retried as `dsync sync` does; seen once as a reset HTTP fetch of a
    // delta torrent under load (reported in the notes), never with a wrong result.
    t.diagnostic(`update retried after: ${upd.stderr.trim().split('\n').pop()}`)
    upd = await pull()
  }
  assert.equal(upd.code, 0, upd.stderr)
  const r = summary(upd.stdout) as { added: number; changed: number; filesFetched: number; bytesReceived: number }
  assert.deepEqual([r.added, r.changed, r.filesFetched], [1, 1, 2])
  assert.equal(r.bytesReceived, 'changed content\n'.length + 'file 40000\n'.length)
  assert.equal(sameTree(save, dest), 10_001)
})

test('a client checks the shard torrents against data.dsync without parsing their file lists (held, or read back one buffer at a time), and names a difference', { timeout: 600_000 }, async () => {
  const host = await prepareHost('127.0.3.114', {})
  const save = join(host.webroot, 'walk10k')
  writePool(save, 10_000, 200)
  writeFileSync(join(host.home, 'repos', 'walk10k.conf'), `repo=walk10k\nsave=${save}\ndsync=true\n`)
  assert.equal((await host.cli('gendsync')).code, 0)
  const dotDsync = join(save, '.dsync')
  const index = readTorrentInfo(readFileSync(join(dotDsync, 'walk10k.torrent')))
  const named = indexedShards(index.files)!
  assert.ok(named.length >= 2, 'the repository is sharded')
  // DEST holds the shard torrents already (kept from a sync): nothing is fetched, no swarm is needed.
  const dest = tempDir()
  mkdirSync(join(dest, '.dsync', 'shards'), { recursive: true })
  for (const ih of named) copyFileSync(join(dotDsync, 'shards', `${ih}.torrent`), join(dest, '.dsync', 'shards', `${ih}.torrent`))
  const ctx = { index, indexMap: pieceMap(layoutOf(index), index.pieceLength), swarm: undefined as unknown as Swarm, stallMs: 1000, from: 'test' }
  const bytes = readFileSync(join(dotDsync, 'data.dsync'))
  // The index vouches for data.dsync's length: kept as the index says, so the shards are what differs.
  const load = (manifestBytes: Buffer) => loadShards(named, repoFiles(dest, 'walk10k'), ctx, parseManifest(manifestBytes, 'data.dsync'), bytes.length)

  const shards = await load(bytes)
  const content = parseManifest(bytes, 'data.dsync').entries.filter(e => e.type === 'f' && e.size > 0)
  assert.deepEqual(shards.flatMap(s => [...s.files].map(f => [f.path, f.size])), content.map(e => [e.path, e.size]))
  for (const s of shards) {
    const parsed = readTorrentInfo(readFileSync(join(dotDsync, 'shards', `${s.infoHash}.torrent`)))
    assert.ok(s.pieces!.equals(parsed.pieces))
    const offsets = layoutOf(parsed).filter(f => !f.pad).map(f => f.offset)
    assert.deepEqual([...s.offsets], offsets, `${s.infoHash}: offsets as the parsed layout says`)
  }
  // Read back from DEST, as a pull holding DEST's lock does (every shard read into one reused buffer): the same walk.
  const stored = await loadShards(named, repoFiles(dest, 'walk10k'), ctx, parseManifest(bytes, 'data.dsync'), bytes.length, { written: [] })
  const shape = (list: typeof shards) => list.map(s => [s.infoHash, [...s.files].map(f => f.path), [...s.offsets], s.totalLength])
  assert.deepEqual(shape(stored), shape(shards))
  assert.ok(stored.every(s => s.torrent === undefined && s.pieces === undefined), 'stored shards keep neither torrent nor piece hashes')

  // One file of the second shard one byte longer in data.dsync (re-serialised, so its END line is right).
  const m = parseManifest(bytes, 'data.dsync')
  const grown = shards[1].files.at(3).path
  const entry = m.entries.find(e => e.path === grown)!
  entry.size += 1
  await assert.rejects(load(serializeManifest(m.entries, m.header.pieceLength)), (err: Error) => {
    assert.ok(err instanceof DsyncError && err.exitCode === ExitCode.badData, String(err))
    assert.match(err.message, new RegExp(`shard ${shards[1].infoHash}: file \\d+ is "${grown}"`))
    return true
  })
})

test('a pull of a sharded repository refused before its fetch leaves no shard torrent in DEST; the next one stores them before its plan and reads each back at its turn', { timeout: 600_000 }, async () => {
  const host = await prepareHost('127.0.3.116', {})
  const save = join(host.webroot, 'guard10k')
  writePool(save, 10_000, 200)
  writeFileSync(join(host.home, 'repos', 'guard10k.conf'), `repo=guard10k\nsave=${save}\ndsync=true\n`)
  const g = await host.cli('--json', 'gendsync')
  assert.equal(g.code, 0, g.stderr)
  const named = (JSON.parse(g.stdout) as { shards?: { infoHash: string }[] }).shards!.map(s => `${s.infoHash}.torrent`)
  assert.ok(named.length >= 2, 'the repository is sharded')
  await startHost(host, ['guard10k'])
  // DEST holds 20 files upstream does not have: deleting them all is refused by the delete guard,
  // after the shard torrents were written (before the plan) and before anything is fetched.
  const dest = join(tempDir(), 'mirror')
  mkdirSync(dest)
  for (let i = 0; i < 20; i++) writeFileSync(join(dest, `local${i}.txt`), `local ${i}\n`)
  const pull = (...extra: string[]) => runCli(['--json', 'pull', `dtp://127.0.3.116:${HOST_PORT}/guard10k`, dest, '--bind', '127.0.3.117', ...extra])
  const shardsInDest = () => {
    try {
      return readdirSync(join(dest, '.dsync', 'shards')).filter(n => n.endsWith('.torrent')).sort()
    } catch {
      return []
    }
  }
  const refused = await pull()
  assert.notEqual(refused.code, 0)
  assert.match(refused.stderr, /refusing to delete 20 of 20 entries/)
  assert.deepEqual(shardsInDest(), [], 'a refused pull leaves no shard torrent behind')
  assert.equal(existsSync(join(dest, '.dsync', 'staging', 'data.dsync.next')), false, 'nor the data.dsync it parked')
  assert.equal(readFileSync(join(dest, 'local7.txt'), 'utf8'), 'local 7\n')

  const forced = await pull('--force')
  assert.equal(forced.code, 0, forced.stderr)
  assert.equal(sameTree(save, dest), 10_000)
  assert.deepEqual(shardsInDest(), [...named].sort())
})
