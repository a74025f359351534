import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { parseRecord } from '../src/generation/record.js'
import { parseManifest } from '../src/manifest/format.js'
import { runCli } from '../testbed/cli.js'
import { HOST_PORT, prepareHost, startHost, type TestHost } from '../testbed/host.js'
import { assertSameTree } from '../testbed/same-tree.js'
import { tempDir, writeTree } from '../testbed/tree.js'

/**
 * The delta chain end to end (docs/SCALE.md): one publishing host keeping K = 5 deltas, and
 * clients left 1, 5 and K+1 = 6 generations behind. The first two follow the chain and move
 * exactly the changed contents plus the record, the deltas and their torrents; the third is
 * off the chain, says so, and converges through the full generation.
 */
const K = 5
const ADDR = '127.0.3.61'

interface PullJson {
  route: string
  deltas?: number
  bytesReceived: number
  metadataBytes: number
  seq?: number
}

function initialFiles(): Record<string, string> {
  const files: Record<string, string> = {}
  for (let i = 0; i < 30; i++) files[`pool/main/p${i % 4}/pkg${i}.deb`] = `package ${i} `.repeat(300 + i * 7)
  files['dists/stable/Release'] = 'Release 0\n'
  return files
}

/** Generation g: one package changed, one added, one removed, Release rewritten. */
function update(repoDir: string, g: number): void {
  writeTree(repoDir, {
    [`pool/main/p${g % 4}/pkg${g}.deb`]: `package ${g} changed in ${g} `.repeat(200 + g),
    [`pool/main/p${g % 4}/new${g}.deb`]: `new in generation ${g} `.repeat(150 + g),
    'dists/stable/Release': `Release ${g}\n`,
  })
  rmSync(join(repoDir, `pool/main/p${(g + 10) % 4}/pkg${g + 10}.deb`))
}

async function pull(dest: string, ...extra: string[]): Promise<{ json: PullJson; stderr: string }> {
  const r = await runCli(['--json', 'pull', `dtp://${ADDR}:${HOST_PORT}/deb`, dest, ...extra])
  assert.equal(r.code, 0, r.stderr)
  const summary = r.stdout.trim().split('\n').map(l => JSON.parse(l) as PullJson & { event: string }).find(l => l.event === 'summary')!
  return { json: summary, stderr: r.stderr }
}

/** Contents of `next` that `have` does not hold anywhere: exactly what a client must download. */
function bytesToFetch(have: Buffer, next: Buffer): number {
  const held = new Set(parseManifest(have, 'have').entries.filter(e => e.sha256).map(e => e.sha256!.toString('hex')))
  const wanted = new Map<string, number>()
  for (const e of parseManifest(next, 'next').entries) {
    if (e.type === 'f' && !held.has(e.sha256!.toString('hex'))) wanted.set(e.sha256!.toString('hex'), e.size)
  }
  return [...wanted.values()].reduce((a, b) => a + b, 0)
}

async function regenerate(host: TestHost): Promise<void> {
  assert.equal((await host.cli('gendsync')).code, 0)
  assert.equal((await host.cli('reload')).code, 0)
}

test(`clients 1, 5 and ${K + 1} generations behind converge; the chain moves only the change`, async () => {
  const host = await prepareHost(ADDR, { deb: initialFiles() })
  const repoDir = join(host.webroot, 'deb')
  writeFileSync(join(host.home, 'repos', 'deb.conf'), `repo=deb\nsave=${repoDir}\ndsync=true\nkeep-deltas=${K}\n`)
  assert.equal((await host.cli('gendsync')).code, 0)
  await startHost(host, ['deb'])
  const dir = tempDir('dsync-chain-')
  const behind: Record<number, string> = { 1: join(dir, 'one'), 5: join(dir, 'five'), [K + 1]: join(dir, 'six') }
  const key = (await host.cli('key')).stdout.trim()

  // Generation 0 .. K+1; each client pulls when it is as far behind as its name says.
  for (let g = 0; g <= K + 1; g++) {
    if (g > 0) {
      update(repoDir, g)
      await regenerate(host)
    }
    for (const [n, dest] of Object.entries(behind)) {
      if (g === K + 1 - Number(n)) await pull(dest, '--key', key)
    }
  }
  const record = parseRecord(readFileSync(join(repoDir, '.dsync', 'generation')))
  assert.equal(record.deltas.length, K)
  const newManifest = readFileSync(join(repoDir, '.dsync', 'data.dsync'))
  const info = Buffer.from(await (await fetch(`http://${ADDR}:${HOST_PORT}/deb/`)).arrayBuffer())

  for (const n of [1, 5]) {
    const dest = behind[n]
    const old = readFileSync(join(dest, '.dsync', 'data.dsync'))
    const { json } = await pull(dest, '--key', key)
    assert.equal(json.route, 'deltas', `${n} behind`)
    assert.equal(json.deltas, n)
    assert.equal(json.bytesReceived, bytesToFetch(old, newManifest), `${n} behind: file bytes`)
    const chain = record.deltas.slice(K - n)
    const deltaFiles = chain.reduce((sum, d) => sum + d.size + statSync(join(repoDir, '.dsync', 'deltas', `${d.seq}.torrent`)).size, 0)
    assert.equal(json.metadataBytes, info.length + record.bytes.length + deltaFiles, `${n} behind: metadata bytes`)
    await assertSameTree(repoDir, dest)
    // The record and the torrent (rebuilt locally) are the host's, byte for byte.
    assert.ok(readFileSync(join(dest, '.dsync', 'generation')).equals(record.bytes))
    assert.ok(readFileSync(join(dest, '.dsync', 'deb.torrent')).equals(readFileSync(join(repoDir, '.dsync', 'deb.torrent'))))
  }

  const far = behind[K + 1]
  const { json, stderr } = await pull(far, '--key', key)
  assert.equal(json.route, 'full')
  assert.match(stderr, /off the delta chain/)
  await assertSameTree(repoDir, far)
  // Every mirror keeps the record's deltas, so it can serve mirrors further behind (the one
  // that came by the full route fetched them for that).
  for (const dest of Object.values(behind)) {
    const dir = join(dest, '.dsync', 'deltas')
    assert.deepEqual(readdirSync(dir).sort(), readdirSync(join(repoDir, '.dsync', 'deltas')).sort(), dest)
    for (const name of readdirSync(dir)) assert.ok(readFileSync(join(dir, name)).equals(readFileSync(join(repoDir, '.dsync', 'deltas', name))), name)
  }

  // Up to date: the record and the host info are all that crosses the wire, and DEST is not
  // walked (a file removed by hand stays missing); --rescan walks it and repairs.
  const victim = join(behind[1], 'dists/stable/Release')
  rmSync(victim)
  const again = await pull(behind[1], '--key', key)
  assert.equal(again.json.bytesReceived, 0)
  assert.equal(again.json.metadataBytes, info.length + record.bytes.length)
  assert.ok(!existsSync(victim), 'an unchanged generation is answered without walking DEST')
  const rescan = await pull(behind[1], '--key', key, '--rescan')
  assert.equal(rescan.json.bytesReceived, statSync(join(repoDir, 'dists/stable/Release')).size)
  await assertSameTree(repoDir, behind[1])
})
