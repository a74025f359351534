import assert from 'node:assert/strict'
import { appendFileSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { applyDelta, parseDelta, sha256Hex } from '../src/generation/delta.js'
import { parseRecord } from '../src/generation/record.js'
import { readTorrentInfo } from '../src/torrent/read.js'
import { runCli } from '../testbed/cli.js'
import { prepareHost, startHost } from '../testbed/host.js'
import { makeHome, tempDir, writeTree } from '../testbed/tree.js'

async function cli(home: string, ...args: string[]) {
  const r = await runCli(['--home', home, ...args])
  assert.equal(r.code, 0, r.stderr)
  return r
}

function files(n: number, tag = 'a'): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i < n; i++) out[`pool/p${i % 3}/f${i}.deb`] = `${tag} ${i} `.repeat(50 + i)
  out['dists/stable/Release'] = `Release ${tag}\n`
  return out
}

test('gendsync signs a record with the home key (0600), dsync key prints it, deltas chain and K are kept', async () => {
  const h = makeHome(tempDir(), { deb: files(12) })
  const repoDir = join(h.webroot, 'deb')
  writeFileSync(join(h.home, 'repos', 'deb.conf'), `repo=deb\nsave=${repoDir}\ndsync=true\nkeep-deltas=2\n`)
  await cli(h.home, 'gendsync')
  const keyFile = join(h.home, 'keys', 'publisher.key')
  assert.equal(statSync(keyFile).mode & 0o777, 0o600)
  const pub = (await cli(h.home, 'key')).stdout.trim()
  assert.match(pub, /^[0-9a-f]{64}$/)
  const recordFile = join(repoDir, '.dsync', 'generation')
  const first = parseRecord(readFileSync(recordFile))
  assert.equal(first.key, pub)
  assert.equal(first.repo, 'deb')
  const manifest1 = readFileSync(join(repoDir, '.dsync', 'data.dsync'))
  assert.equal(first.manifest.sha256, sha256Hex(manifest1))
  assert.equal(first.torrent, readTorrentInfo(readFileSync(join(repoDir, '.dsync', 'deb.torrent'))).infoHash)
  assert.deepEqual(first.deltas, [])

  // No change: the record is kept byte for byte.
  await cli(h.home, 'gendsync')
  assert.ok(readFileSync(recordFile).equals(first.bytes))

  // Three updates: each adds one delta; only the 2 newest are kept, on disk and in the record.
  const seqs: number[] = []
  let previous = manifest1
  for (let round = 1; round <= 3; round++) {
    writeTree(repoDir, { [`pool/p0/new${round}.deb`]: `new ${round}`, 'dists/stable/Release': `Release ${round}\n` })
    rmSync(join(repoDir, `pool/p${round % 3}/f${round}.deb`))
    await cli(h.home, 'gendsync')
    const rec = parseRecord(readFileSync(recordFile))
    const manifest = readFileSync(join(repoDir, '.dsync', 'data.dsync'))
    const last = rec.deltas[rec.deltas.length - 1]
    assert.ok(rec.seq > (seqs[seqs.length - 1] ?? first.seq), 'seq grows')
    seqs.push(rec.seq)
    assert.equal(last.seq, rec.seq)
    assert.equal(last.from, sha256Hex(previous))
    assert.equal(last.to, rec.manifest.sha256)
    const deltaBytes = readFileSync(join(repoDir, '.dsync', 'deltas', `${rec.seq}.delta`))
    assert.equal(sha256Hex(deltaBytes), last.sha256)
    const delta = parseDelta(deltaBytes)
    // new file, Release, the removed file, and the two folders whose mtimes moved
    assert.ok(delta.lines.some(l => l === `-\tpool/p${round % 3}/f${round}.deb`), delta.lines.join('\n'))
    assert.ok(applyDelta(previous, delta).equals(manifest), 'the delta rebuilds data.dsync byte for byte')
    const dt = readTorrentInfo(readFileSync(join(repoDir, '.dsync', 'deltas', `${rec.seq}.torrent`)))
    assert.equal(dt.infoHash, last.infoHash)
    assert.deepEqual(dt.files.filter(f => !f.pad).map(f => f.path), ['dists/stable/Release', `pool/p0/new${round}.deb`])
    previous = manifest
  }
  const rec = parseRecord(readFileSync(recordFile))
  assert.deepEqual(rec.deltas.map(d => d.seq), seqs.slice(1))
  assert.deepEqual(readdirSync(join(repoDir, '.dsync', 'deltas')).sort(), seqs.slice(1).flatMap(s => [`${s}.delta`, `${s}.torrent`]).sort())

  // One flipped byte anywhere in the record breaks its signature.
  const bad = Buffer.from(rec.bytes)
  bad[bad.indexOf('manifest ') + 9] ^= 1
  assert.throws(() => parseRecord(bad), /bad signature|malformed/)
})

test('a host serves the record and the deltas it lists, and seeds only a record that matches its generation', async () => {
  const host = await prepareHost('127.0.3.41', { deb: files(6) })
  const repoDir = join(host.webroot, 'deb')
  writeTree(repoDir, { 'pool/p0/extra.deb': 'extra' })
  assert.equal((await host.cli('gendsync')).code, 0)
  await startHost(host, ['deb'])
  const base = `http://${host.address}:47921/deb`
  const record = parseRecord(Buffer.from(await (await fetch(`${base}/generation`)).arrayBuffer()))
  assert.ok(record.bytes.equals(readFileSync(join(repoDir, '.dsync', 'generation'))))
  const info = await (await fetch(`${base}/`)).json() as { record: string; seq: number }
  assert.equal(info.seq, record.seq)
  assert.equal(info.record, '/deb/generation')
  const d = record.deltas[0]
  const delta = Buffer.from(await (await fetch(`${base}/deltas/${d.seq}.delta`)).arrayBuffer())
  assert.equal(sha256Hex(delta), d.sha256)
  const torrent = Buffer.from(await (await fetch(`${base}/deltas/${d.seq}.torrent`)).arrayBuffer())
  assert.equal(readTorrentInfo(torrent).infoHash, d.infoHash)
  assert.equal((await fetch(`${base}/deltas/1.delta`)).status, 404)

  // A record that no longer describes data.dsync (gendsync killed before writing it) is not served.
  appendFileSync(join(repoDir, 'pool/p0/extra.deb'), '+')
  const g = await host.cli('gendsync')
  assert.equal(g.code, 0)
  writeFileSync(join(repoDir, '.dsync', 'generation'), record.bytes)
  assert.equal((await host.cli('reload')).code, 0)
  assert.equal((await fetch(`${base}/generation`)).status, 404)
  assert.match(host.log(), /stale record/)
})
