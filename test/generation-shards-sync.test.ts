import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { test } from 'node:test'
import { parseRecord } from '../src/generation/record.js'
import { parseManifest } from '../src/manifest/format.js'
import { readTorrentInfo } from '../src/torrent/read.js'
import { indexedShards } from '../src/torrent/shards.js'
import { runCli } from '../testbed/cli.js'
import { HOST_PORT, prepareHost, startHost } from '../testbed/host.js'
import { assertSameTree } from '../testbed/same-tree.js'
import { OLD_MTIME, tempDir, writePool } from '../testbed/tree.js'

/**
 * The delta chain on a SHARDED repository (docs/SCALE.md, "Shards" and "Delta chain"): after
 * a delta update the client rebuilds the generation's shard torrents and index torrent from
 * the previous ones' piece hashes and the changed files, so the update moves only the change
 * (the issue's bound: 1.2 x changed file bytes + 64 KiB + 300 B per changed entry) and DEST
 * ends with the host's torrents byte for byte. Clients 1, 5 and K+1 = 6 generations behind.
 */
const K = 5
const ADDR = '127.0.3.160'
const REPO = 'pool'
/** 20,000 files with ~235-byte paths: three shards, the first ending on a content-defined cut, the second on a forced one. */
const FILES = 20_000
const PAD = 100

interface PullJson {
  route: string
  deltas?: number
  added: number
  changed: number
  removed: number
  bytesReceived: number
  metadataBytes: number
  torrents?: { rebuilt: number; kept: number; fetched: number }
}

function writeRepo(root: string): void {
  writePool(root, FILES, PAD)
  put(root, 'dists/stable/Release', 'Release 0\n', 0)
}

/** Writes a file with an mtime `g` hours after the tree's, so no quick check can miss it. */
function put(root: string, rel: string, content: string, g: number): void {
  mkdirSync(dirname(join(root, rel)), { recursive: true })
  writeFileSync(join(root, rel), content)
  const t = new Date(OLD_MTIME.getTime() + g * 3_600_000)
  utimesSync(join(root, rel), t, t)
}

/** The content paths of each shard the host's index names, in order. */
function hostShards(save: string): string[][] {
  const index = readTorrentInfo(readFileSync(join(save, '.dsync', `${REPO}.torrent`)))
  return indexedShards(index.files)!.map(ih =>
    readTorrentInfo(readFileSync(join(save, '.dsync', 'shards', `${ih}.torrent`))).files.filter(f => !f.pad).map(f => f.path))
}

/**
 * Generation g. Every one: Release rewritten and a new file beside it (the first shard, whose
 * end is content-defined, so no other shard moves). Odd: the repository's last file
 * rewritten (the last shard only; the middle one keeps its infohash). Even: a file of the
 * middle shard removed (its forced end moves, so the last shard's range changes too); at 4,
 * also the file that ends the first shard (the one before it ends that shard now).
 */
function update(save: string, g: number, shards: string[][]): void {
  put(save, 'dists/stable/Release', `Release ${g}\n`.repeat(g + 1), g)
  put(save, `dists/stable/new${g}`, `new in generation ${g}\n`, g)
  if (g % 2 === 1) {
    const last = shards[shards.length - 1]
    put(save, last[last.length - 1], `last file, generation ${g}\n`.repeat(g), g)
  } else {
    rmSync(join(save, shards[1][100 + g]))
    if (g === 4) rmSync(join(save, shards[0][shards[0].length - 1]))
  }
}

/** Entries whose line differs between two data.dsync files, and the bytes of the files among them now. */
function change(before: Buffer, after: Buffer): { entries: number; bytes: number } {
  const lines = (b: Buffer) => new Map(parseManifest(b, 'x').entries.map(e => [e.path, JSON.stringify({ ...e, sha256: e.sha256?.toString('hex') })]))
  const old = lines(before)
  const now = parseManifest(after, 'y').entries
  let entries = 0
  let bytes = 0
  const seen = new Set<string>()
  for (const e of now) {
    seen.add(e.path)
    if (old.get(e.path) === JSON.stringify({ ...e, sha256: e.sha256?.toString('hex') })) continue
    entries++
    if (e.type === 'f') bytes += e.size
  }
  for (const p of old.keys()) if (!seen.has(p)) entries++
  return { entries, bytes }
}

async function pull(dest: string, ...extra: string[]): Promise<{ json: PullJson; stderr: string }> {
  const r = await runCli(['--json', 'pull', `dtp://${ADDR}:${HOST_PORT}/${REPO}`, dest, ...extra])
  assert.equal(r.code, 0, r.stderr)
  const summary = r.stdout.trim().split('\n').map(l => JSON.parse(l) as PullJson & { event: string }).find(l => l.event === 'summary')!
  return { json: summary, stderr: r.stderr }
}

/** DEST's torrents are the host's, byte for byte: index, magnet link, and exactly its shard files. */
function assertSameTorrents(save: string, dest: string, what: string): void {
  for (const name of [`${REPO}.torrent`, `${REPO}.magnet`]) {
    assert.ok(readFileSync(join(dest, '.dsync', name)).equals(readFileSync(join(save, '.dsync', name))), `${what}: ${name}`)
  }
  const names = readdirSync(join(save, '.dsync', 'shards')).sort()
  assert.deepEqual(readdirSync(join(dest, '.dsync', 'shards')).sort(), names, `${what}: shard files`)
  for (const n of names) assert.ok(readFileSync(join(dest, '.dsync', 'shards', n)).equals(readFileSync(join(save, '.dsync', 'shards', n))), `${what}: ${n}`)
}

/** A delta pull moved the change only: the chain's files, the changed contents, no torrent. */
async function assertDeltaPull(save: string, dest: string, n: number, extra: string[]): Promise<PullJson> {
  const old = readFileSync(join(dest, '.dsync', 'data.dsync'))
  const { json } = await pull(dest, ...extra)
  const what = `${n} behind (${dest})`
  assert.equal(json.route, 'deltas', what)
  assert.equal(json.deltas, n, what)
  const record = parseRecord(readFileSync(join(save, '.dsync', 'generation')))
  const info = Buffer.from(await (await fetch(`http://${ADDR}:${HOST_PORT}/${REPO}/`)).arrayBuffer())
  const chain = record.deltas.slice(record.deltas.length - n)
  const deltaFiles = chain.reduce((sum, d) => sum + d.size + statSync(join(save, '.dsync', 'deltas', `${d.seq}.torrent`)).size, 0)
  assert.equal(json.metadataBytes, info.length + record.bytes.length + deltaFiles, `${what}: metadata is the record and the chain, no torrent`)
  assert.equal(json.torrents?.fetched, 0, `${what}: no torrent fetched`)
  assert.equal(json.torrents!.rebuilt + json.torrents!.kept, record.shards.length + 1, `${what}: every shard and the index rebuilt or kept`)
  const { entries, bytes } = change(old, readFileSync(join(save, '.dsync', 'data.dsync')))
  const bound = 1.2 * bytes + 65536 + 300 * entries
  assert.ok(json.metadataBytes + json.bytesReceived <= bound, `${what}: ${json.metadataBytes + json.bytesReceived} bytes on the wire > ${bound}`)
  await assertSameTree(save, dest)
  assertSameTorrents(save, dest, what)
  assert.ok(readFileSync(join(dest, '.dsync', 'generation')).equals(record.bytes), what)
  return json
}

test(`sharded repository: clients 1, 5 and ${K + 1} generations behind converge; the chain moves only the change and the shard torrents are rebuilt`, { timeout: 1_200_000 }, async t => {
  const host = await prepareHost(ADDR, {})
  const save = join(host.webroot, REPO)
  writeRepo(save)
  writeFileSync(join(host.home, 'repos', `${REPO}.conf`), `repo=${REPO}\nsave=${save}\ndsync=true\nkeep-deltas=${K}\n`)
  assert.equal((await host.cli('gendsync')).code, 0)
  let shards = hostShards(save)
  assert.equal(shards.length, 3, 'the repository is sharded in three')
  await startHost(host, [REPO])
  const key = (await host.cli('key')).stdout.trim()
  const dir = tempDir('dsync-shard-chain-')
  const one = join(dir, 'one')
  const five = join(dir, 'five')
  const six = join(dir, 'six')

  // Generation 0: `one` bootstraps; the others are copies of it at the generations they stay at.
  await pull(one, '--key', key)
  assertSameTorrents(save, one, 'bootstrap')
  execFileSync('cp', ['-a', one, six])
  let kept = 0
  for (let g = 1; g <= K + 1; g++) {
    const before = readFileSync(join(save, '.dsync', `${REPO}.torrent`))
    const oldShards = indexedShards(readTorrentInfo(before).files)!
    update(save, g, shards)
    const r = await host.cli('gendsync')
    assert.equal(r.code, 0, r.stderr)
    assert.equal((await host.cli('reload')).code, 0)
    const newHash = readTorrentInfo(readFileSync(join(save, '.dsync', `${REPO}.torrent`))).infoHash
    while ((await (await fetch(`http://${ADDR}:${HOST_PORT}/${REPO}/`)).json() as { infoHash: string }).infoHash !== newHash) {
      await new Promise(res => setTimeout(res, 200))
    }
    const newShards = indexedShards(readTorrentInfo(readFileSync(join(save, '.dsync', `${REPO}.torrent`))).files)!
    if (g % 2 === 1) assert.ok(newShards.includes(oldShards[1]), `generation ${g}: the middle shard keeps its infohash on the host`)
    const json = await assertDeltaPull(save, one, 1, ['--key', key])
    kept += json.torrents!.kept
    t.diagnostic(`generation ${g}: 1 behind: ${JSON.stringify(json.torrents)}, ${json.metadataBytes} B metadata, ${json.bytesReceived} B files`)
    if (g === 1) execFileSync('cp', ['-a', one, five])
    shards = hostShards(save)
  }
  assert.ok(kept >= 3, 'unchanged shards were kept as they were')

  // Five behind follows the chain; six behind is off it (K = 5) and takes the full generation.
  const json5 = await assertDeltaPull(save, five, 5, ['--key', key])
  t.diagnostic(`5 behind: ${JSON.stringify(json5.torrents)}, ${json5.metadataBytes} B metadata, ${json5.bytesReceived} B files`)
  const far = await pull(six, '--key', key)
  assert.equal(far.json.route, 'full')
  assert.match(far.stderr, /off the delta chain/)
  await assertSameTree(save, six)
  assertSameTorrents(save, six, `${K + 1} behind`)

  // Up to date: a rerun fetches nothing and only the host info and the record cross the wire.
  const record = parseRecord(readFileSync(join(save, '.dsync', 'generation')))
  const info = Buffer.from(await (await fetch(`http://${ADDR}:${HOST_PORT}/${REPO}/`)).arrayBuffer())
  for (const dest of [one, five, six]) {
    const again = await pull(dest, '--key', key)
    assert.equal(again.json.bytesReceived, 0, dest)
    assert.equal(again.json.metadataBytes, info.length + record.bytes.length, dest)
  }
})

test('a repository that grows into shards and back into one torrent follows the delta chain; no torrent is fetched', { timeout: 900_000 }, async t => {
  const addr = '127.0.3.162'
  const host = await prepareHost(addr, {})
  const save = join(host.webroot, REPO)
  // 11,000 files of ~235-byte paths: one torrent, just under the 4 MB estimate; 1,500 more shard it.
  writePool(save, 11_000, PAD)
  put(save, 'dists/stable/Release', 'Release 0\n', 0)
  writeFileSync(join(host.home, 'repos', `${REPO}.conf`), `repo=${REPO}\nsave=${save}\ndsync=true\n`)
  assert.equal((await host.cli('gendsync')).code, 0)
  await startHost(host, [REPO])
  const dest = join(tempDir('dsync-shard-grow-'), 'mirror')
  const pullHere = async () => {
    const r = await runCli(['--json', 'pull', `dtp://${addr}:${HOST_PORT}/${REPO}`, dest])
    assert.equal(r.code, 0, r.stderr)
    return r.stdout.trim().split('\n').map(l => JSON.parse(l) as PullJson & { event: string }).find(l => l.event === 'summary')!
  }
  await pullHere()
  assert.equal(readdirSync(join(save, '.dsync')).includes('shards'), false, 'one torrent to begin with')
  const extra = Array.from({ length: 1500 }, (_, i) => `pool/extra/${'p'.repeat(PAD)}/${'k'.repeat(PAD)}${Math.floor(i / 10)}/g${i}_1.0_amd64.deb`)
  for (const [g, sharded] of [[1, true], [2, false]] as const) {
    put(save, 'dists/stable/Release', `Release ${g}\n`, g)
    for (const p of extra) {
      if (sharded) put(save, p, `extra ${p.length}\n`, 0)
      else rmSync(join(save, p))
    }
    if (!sharded) rmSync(join(save, 'pool', 'extra'), { recursive: true })
    const r = await host.cli('gendsync')
    assert.equal(r.code, 0, r.stderr)
    assert.equal((await host.cli('reload')).code, 0)
    const record = parseRecord(readFileSync(join(save, '.dsync', 'generation')))
    assert.equal(record.shards.length > 0, sharded, `generation ${g}: sharded ${sharded}`)
    while ((await (await fetch(`http://${addr}:${HOST_PORT}/${REPO}/`)).json() as { infoHash: string }).infoHash !== record.torrent) {
      await new Promise(res => setTimeout(res, 200))
    }
    const json = await pullHere()
    t.diagnostic(`generation ${g} (${sharded ? `${record.shards.length} shards` : 'one torrent'}): ${JSON.stringify(json.torrents)}, ${json.metadataBytes} B metadata`)
    assert.equal(json.route, 'deltas')
    assert.deepEqual(json.torrents, { rebuilt: record.shards.length + 1, kept: 0, fetched: 0 })
    const info = Buffer.from(await (await fetch(`http://${addr}:${HOST_PORT}/${REPO}/`)).arrayBuffer())
    const delta = record.deltas[record.deltas.length - 1]
    const deltaTorrent = statSync(join(save, '.dsync', 'deltas', `${delta.seq}.torrent`)).size
    assert.equal(json.metadataBytes, info.length + record.bytes.length + delta.size + deltaTorrent, 'no torrent on the wire')
    await assertSameTree(save, dest)
    if (sharded) assertSameTorrents(save, dest, `generation ${g}`)
    else {
      assert.ok(readFileSync(join(dest, '.dsync', `${REPO}.torrent`)).equals(readFileSync(join(save, '.dsync', `${REPO}.torrent`))))
      assert.deepEqual(readdirSync(join(dest, '.dsync', 'shards')), [], 'no shard torrent left once the repository is one torrent again')
    }
  }
})
