import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { test } from 'node:test'
import { prepareHost, startHost, startShardedHost } from '../testbed/host.js'
import { pullWatched } from '../testbed/pull-watch.js'
import { assertSameTree, settleDirMtimes } from '../testbed/same-tree.js'
import { hasLibtorrent, pickPort, startLibtorrentSeeder } from '../testbed/seeders.js'
import { StallProxy } from '../testbed/stall-proxy.js'
import { stagingFiles, tempDir, writeTree } from '../testbed/tree.js'
import { makeUpstream, pullCli } from '../testbed/upstream.js'
import { repoFiles } from '../src/manifest/paths.js'
import { stagedPath } from '../src/sync/part-writer.js'

// SIGKILL while the client fetches the torrent (BEP 9 from a magnet link, or HTTP from a
// dtp:// host) and while it stages a large file. The kill comes at a point the test knows
// the transfer has reached: a proxy in front of a real host lets half a reply through and
// holds the rest, or the client's own progress events say how far the download is.
// Addresses 127.0.8.x.

/** Every path under `root` (.dsync included) with its type and content: a byte-exact snapshot. */
function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>()
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const abs = join(d, name)
      const st = lstatSync(abs)
      const rel = relative(root, abs)
      if (st.isDirectory()) {
        out.set(rel, 'dir')
        walk(abs)
      } else if (st.isSymbolicLink()) out.set(rel, `link ${readlinkSync(abs)}`)
      else out.set(rel, `${st.mode.toString(8)} ${st.mtimeMs} ${readFileSync(abs).toString('base64')}`)
    }
  }
  walk(root)
  return out
}

/** 400 small files: the torrent's info dict spans several 16 KiB metadata blocks. */
function manyFiles(tag: string): Record<string, string> {
  const files: Record<string, string> = {}
  for (let i = 0; i < 400; i++) files[`pool/main/p${i % 8}/package-number-${i}_1.0_amd64.deb`] = `${tag} ${i}\n`.repeat(1 + (i % 5))
  files['dists/stable/Release'] = `Suite: stable ${tag}\n`
  return files
}

/**
 * A host serving generation 2 of a repo, a DEST already at generation 1, and a proxy in
 * front of the host. The kill happens while the proxy holds a reply the client is reading.
 */
async function killedWhileFetchingMetadata(address: string, kind: 'magnet' | 'dtp'): Promise<void> {
  // A port of its own: a fixed one can be taken by another suite running on the same machine.
  const host = await prepareHost(address, { rocky: manyFiles('v1') }, '', pickPort())
  const save = join(host.webroot, 'rocky')
  await startHost(host, ['rocky'])
  const dest = join(tempDir(), 'mirror')
  const first = await pullCli(`dtp://${address}:${host.port}/rocky`, dest, [])
  assert.equal(first.code, 0, first.stderr)

  writeTree(save, manyFiles('v2'))
  settleDirMtimes(save)
  const g = await host.cli('--json', 'gendsync')
  assert.equal(g.code, 0, g.stderr)
  assert.equal((await host.cli('reload')).code, 0)
  const infoHash = (JSON.parse(g.stdout) as { infoHash: string }).infoHash
  const torrent = readFileSync(join(save, '.dsync/rocky.torrent'))
  assert.ok(torrent.length > 3 * 16384, `the torrent spans several metadata blocks (${torrent.length} bytes)`)

  const proxy = await StallProxy.start(address.replace(/\.\d+$/, '.200'), { host: address, port: host.port })
  // Part of the torrent gets through, then the reply hangs: the client is mid-fetch. Over BEP 9
  // half the info dict; over HTTP a little of the first torrent it asks for (the whole one,
  // or, DEST being one generation behind, the delta's, which may be smaller).
  proxy.stallAfter = kind === 'magnet' ? Math.floor(torrent.length / 2) : 1000
  proxy.match = kind === 'dtp' ? first => /^GET \S*\.torrent /.test(first.toString('latin1')) : first => first[0] === 0x13
  const source = kind === 'magnet' ? `magnet:?xt=urn:btih:${infoHash}&dn=rocky` : `dtp://${proxy.address}/rocky`
  const peers = kind === 'magnet' ? [proxy.address] : []
  const before = snapshot(dest)
  let stalledAt = -1
  const phases = new Set<string>()
  const killed = await pullWatched(source, dest, peers, {
    onEvent: e => { if (e.phase) phases.add(e.phase) },
    onChild: child => proxy.once('stalled', (n: number) => {
      stalledAt = n
      child.kill('SIGKILL')
    }),
  })
  assert.equal(killed.signal, 'SIGKILL', `killed mid-fetch: ${killed.stderr}`)
  assert.ok(stalledAt > 0 && stalledAt < torrent.length, `the proxy held the reply after ${stalledAt} bytes (the whole torrent is ${torrent.length})`)
  assert.ok(!phases.has('manifest') && !phases.has('files'), `still fetching the torrent when killed (phases seen: ${[...phases].join(', ')})`)
  // A kill before the torrent is complete changes nothing in DEST, not even under .dsync/, but
  // for the lock a run may hold by then (its pid is dead: the next run takes it over).
  const after = snapshot(dest)
  after.delete('.dsync/lock')
  assert.deepEqual(after, before, 'DEST is byte for byte as it was')

  proxy.stallAfter = undefined
  const resumed = await pullCli(source, dest, peers)
  assert.equal(resumed.code, 0, resumed.stderr)
  assert.equal(resumed.summary!.infoHash, infoHash)
  await assertSameTree(save, dest)
}

test('SIGKILL while fetching the torrent over BEP 9 (magnet link) leaves DEST untouched; the re-run converges', { timeout: 180_000 }, async () => {
  await killedWhileFetchingMetadata('127.0.8.2', 'magnet')
})

test('SIGKILL while fetching the torrent from a dtp:// host over HTTP leaves DEST untouched; the re-run converges', { timeout: 180_000 }, async () => {
  await killedWhileFetchingMetadata('127.0.8.3', 'dtp')
})

/**
 * The re-run after a kill mid-transfer: converges, and fetches at most what the killed run had
 * not yet verified (its last progress event before the kill); staging ends empty.
 */
async function resumeFetchesOnlyTheRest(up: { torrent: string; save: string }, dest: string, peers: string[], env: Record<string, string>,
  at: { bytesDone: number; bytesTotal: number }): Promise<void> {
  const resumed = await pullCli(up.torrent, dest, peers, [], env)
  assert.equal(resumed.code, 0, resumed.stderr)
  await assertSameTree(up.save, dest)
  assert.ok(resumed.summary!.bytesReceived <= at.bytesTotal - at.bytesDone,
    `the resume fetched ${resumed.summary!.bytesReceived} bytes; at most ${at.bytesTotal - at.bytesDone} were not yet verified`)
  assert.deepEqual(stagingFiles(dest), [])
}

// A pull this small is staged on the event loop (stage-inline.ts); DSYNC_STAGE_THREADS=1 runs the
// same kill against the stage worker threads a bigger pull uses. Second pair of addresses: 127.0.8.14-15.
for (const [how, env, hosts] of [
  ['on the event loop', {}, ['127.0.8.10', '127.0.8.11']],
  ['by the stage worker threads', { DSYNC_STAGE_THREADS: '1' }, ['127.0.8.14', '127.0.8.15']],
] as const) {
  test(`SIGKILL while a large file is being staged ${how}: the live tree is untouched, the re-run fetches at most what was not yet verified`, {
    skip: hasLibtorrent ? false : 'python3-libtorrent is not installed', timeout: 180_000,
  }, async () => {
    const big = Buffer.alloc(6 << 20)
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i)
    const up = await makeUpstream({ 'images/big.iso': big, 'dists/Release': 'Suite: x\n', 'README': 'readme\n' })
    // Two hosts at 1 MB/s each: the 6 MiB file takes a few seconds to arrive.
    const seeders = await Promise.all(hosts.map(h => startLibtorrentSeeder(up.torrent, up.webroot, h, { uploadLimit: 1_000_000 })))
    const dest = join(tempDir(), 'mirror')
    writeTree(dest, { 'old-file.txt': 'from the previous generation' })
    let at: { bytesDone: number; bytesTotal: number } | undefined
    const killed = await pullWatched(up.torrent, dest, seeders.map(s => s.address), {
      env,
      onEvent: (e, child) => {
        if (!at && e.event === 'progress' && e.phase === 'files' && e.bytesDone >= e.bytesTotal * 0.4) {
          at = { bytesDone: e.bytesDone, bytesTotal: e.bytesTotal }
          child.kill('SIGKILL')
        }
      },
    })
    assert.equal(killed.signal, 'SIGKILL', killed.stderr)
    assert.ok(at && at.bytesDone < at.bytesTotal, `killed mid-transfer: ${JSON.stringify(at)}`)
    // The big file was half-staged: its .part is there, nothing reached the live tree.
    const staged = stagingFiles(dest)
    assert.ok(staged.some(n => n.endsWith('.part')), `a .part in staging: ${staged.join(' ')}`)
    assert.deepEqual(readdirSync(dest).sort(), ['.dsync', 'old-file.txt'])
    assert.equal(readFileSync(join(dest, 'old-file.txt'), 'utf8'), 'from the previous generation')

    await resumeFetchesOnlyTheRest(up, dest, seeders.map(s => s.address), env, at)
  })
}

// Both ways again: on the event loop (a pull this small) and by the stage worker threads.
for (const [how, env, hosts] of [
  ['on the event loop', {}, ['127.0.8.16', '127.0.8.17']],
  ['by the stage worker threads', { DSYNC_STAGE_THREADS: '1' }, ['127.0.8.18', '127.0.8.19']],
] as const) {
  test(`SIGKILL after files were placed ahead in the new folders ${how}: none is in the live tree, the re-run fetches none of them again`, {
    skip: hasLibtorrent ? false : 'python3-libtorrent is not installed', timeout: 180_000,
  }, async () => {
    // Verified files whose folder is new are written at their own path inside
    // .dsync/staging/folders/ (new-folders.ts aheadFilter), not under their SHA-256. A kill
    // leaves them there; the next run must keep them (not fetch them again) and not let them
    // into DEST before its apply. The torrent lists aa/ first: the small files arrive before
    // the big one, which two hosts at 1 MB/s each take seconds to send.
    const files: Record<string, Buffer | string> = { 'dists/Release': 'Suite: x\n', 'zz/big.iso': randomBytes(6 << 20) }
    const small = 40
    for (let i = 0; i < small; i++) files[`aa/p${i % 4}/small-${i}.deb`] = randomBytes(1000 + i)
    const up = await makeUpstream(files)
    const seeders = await Promise.all(hosts.map(h => startLibtorrentSeeder(up.torrent, up.webroot, h, { uploadLimit: 1_000_000 })))
    const dest = join(tempDir(), 'mirror')
    writeTree(dest, { 'old-file.txt': 'from the previous generation' })
    let at: { bytesDone: number; bytesTotal: number; filesDone: number } | undefined
    const killed = await pullWatched(up.torrent, dest, seeders.map(s => s.address), {
      env,
      onEvent: (e, child) => {
        if (!at && e.event === 'progress' && e.phase === 'files' && (e.filesDone as number) >= small && e.bytesDone < e.bytesTotal) {
          at = { bytesDone: e.bytesDone, bytesTotal: e.bytesTotal, filesDone: e.filesDone as number }
          child.kill('SIGKILL')
        }
      },
    })
    assert.equal(killed.signal, 'SIGKILL', killed.stderr)
    assert.ok(at, 'killed once the small files were verified, before the big one')
    const ahead = stagingFiles(dest).filter(n => n.startsWith('folders/'))
    assert.ok(ahead.length >= small, `the small files were placed ahead: ${stagingFiles(dest).join(' ')}`)
    assert.deepEqual(readdirSync(dest).sort(), ['.dsync', 'old-file.txt'])

    await resumeFetchesOnlyTheRest(up, dest, seeders.map(s => s.address), env, at)
  })
}

test('a staged file cut short by a kill mid-write is fetched again, never placed', {
  skip: hasLibtorrent ? false : 'python3-libtorrent is not installed', timeout: 180_000,
}, async () => {
  // A file of one piece is written straight under its staged name (no .part, no rename): a
  // kill in the middle of that write leaves a short file there, which must not count as staged.
  const small = randomBytes(3000)
  const up = await makeUpstream({ 'pool/main/a/small.deb': small, 'pool/main/b/other.deb': randomBytes(2000), 'dists/Release': 'Suite: x\n' })
  const seeder = await startLibtorrentSeeder(up.torrent, up.webroot, '127.0.8.12')
  const dest = join(tempDir(), 'mirror')
  const cut = stagedPath(join(dest, '.dsync', 'staging'), createHash('sha256').update(small).digest('hex'))
  mkdirSync(join(cut, '..'), { recursive: true })
  writeFileSync(cut, small.subarray(0, 1000))

  const run = await pullCli(up.torrent, dest, [seeder.address])
  assert.equal(run.code, 0, run.stderr)
  await assertSameTree(up.save, dest)
  assert.equal(run.summary!.bytesReceived, small.length + 2000 + 'Suite: x\n'.length, 'the short staged file was fetched again')
  assert.deepEqual(stagingFiles(dest), [])
})

test('folders a killed run made ahead for another generation never reach DEST', {
  skip: hasLibtorrent ? false : 'python3-libtorrent is not installed', timeout: 180_000,
}, async () => {
  // The new folders are made inside staging while the transfer runs and moved into DEST at
  // the apply (new-folders.ts). A run killed after making them leaves them there; the next
  // run, maybe of another generation, must not carry them into the live tree.
  const up = await makeUpstream({ 'pool/main/a/small.deb': randomBytes(3000), 'pool/main/b/other.deb': randomBytes(2000), 'dists/Release': 'Suite: x\n' })
  const seeder = await startLibtorrentSeeder(up.torrent, up.webroot, '127.0.8.13')
  const dest = join(tempDir(), 'mirror')
  const ahead = join(dest, '.dsync', 'staging', 'folders')
  mkdirSync(join(ahead, 'pool', 'main', 'gone-upstream', 'deeper'), { recursive: true })
  mkdirSync(join(ahead, 'pool', 'main', 'a', 'stale'), { recursive: true })

  const run = await pullCli(up.torrent, dest, [seeder.address])
  assert.equal(run.code, 0, run.stderr)
  await assertSameTree(up.save, dest)
  assert.deepEqual(readdirSync(join(dest, '.dsync', 'staging')), [], 'staging is emptied, the folders made ahead included')
})

test('SIGKILL while the shard torrents are fetched: data.dsync and each shard torrent already on disk, the live tree untouched; the re-run converges', { timeout: 600_000 }, async () => {
  // DEST's lock is taken once the index torrent is checked; from there data.dsync is parked in
  // staging and each shard torrent is written to DEST/.dsync/shards/ as it arrives (the run does
  // not hold them all: docs/SCALE.md, "Bootstrap memory"). A kill then leaves those, and nothing
  // outside .dsync/; the next run keeps what it can use and converges.
  const { host, save, gen } = await startShardedHost('127.0.8.20', 'shardkill', pickPort())
  const up = repoFiles(save, 'shardkill')
  const shardBytes = gen.shards.map(s => readFileSync(join(up.shards, `${s.infoHash}.torrent`)))
  const totalShards = shardBytes.reduce((n, b) => n + b.length, 0)

  const proxy = await StallProxy.start('127.0.8.200', { host: '127.0.8.20', port: host.port })
  // Over the one peer connection come the index's info dict (BEP 9), data.dsync, then the shard
  // torrents in order: held once the first shard torrent and part of the next have come.
  proxy.stallAfter = statSync(up.torrent).size + statSync(up.manifest).size + shardBytes[0].length + Math.floor(shardBytes[1].length / 2)
  proxy.match = first => first[0] === 0x13
  const dest = join(tempDir(), 'mirror')
  writeTree(dest, { 'local/keep.txt': 'a file of the operator\n' })
  const before = snapshot(dest)
  const phases = new Set<string>()
  const source = `magnet:?xt=urn:btih:${gen.infoHash}&dn=shardkill`
  const killed = await pullWatched(source, dest, [proxy.address], {
    onEvent: e => { if (e.phase) phases.add(e.phase) },
    onChild: child => proxy.once('stalled', () => child.kill('SIGKILL')),
  })
  assert.equal(killed.signal, 'SIGKILL', `killed mid-fetch: ${killed.stderr}`)
  assert.ok(phases.has('manifest') && !phases.has('files'), `killed while the metadata was fetched (phases seen: ${[...phases].join(', ')})`)
  const after = snapshot(dest)
  for (const rel of [...after.keys()]) if (rel.startsWith('.dsync')) after.delete(rel)
  assert.deepEqual(after, before, 'nothing outside DEST/.dsync/ changed')
  assert.equal(existsSync(join(dest, '.dsync', 'data.dsync')), false, 'no data.dsync committed')
  assert.ok(readFileSync(join(dest, '.dsync', 'staging', 'data.dsync.next')).equals(readFileSync(up.manifest)), 'data.dsync was parked in staging before the shard torrents came')
  const stored = readdirSync(join(dest, '.dsync', 'shards')).filter(n => n.endsWith('.torrent'))
  assert.ok(stored.length >= 1 && stored.length < shardBytes.length, `the first shard torrent was on disk, not all (${stored.join(' ')}; ${totalShards} bytes in all)`)
  for (const name of stored) {
    const s = gen.shards.findIndex(x => `${x.infoHash}.torrent` === name)
    assert.ok(s >= 0 && readFileSync(join(dest, '.dsync', 'shards', name)).equals(shardBytes[s]), `${name} is the whole shard torrent`)
  }

  proxy.stallAfter = undefined
  const resumed = await pullCli(source, dest, [proxy.address], ['--force'])
  assert.equal(resumed.code, 0, resumed.stderr)
  assert.equal(resumed.summary!.infoHash, gen.infoHash)
  await assertSameTree(save, dest)
  assert.deepEqual(readdirSync(join(dest, '.dsync', 'shards')).sort(), gen.shards.map(s => `${s.infoHash}.torrent`).sort())
  assert.deepEqual(stagingFiles(dest), [])
  proxy.close()
})
