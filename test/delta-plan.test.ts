import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, existsSync, linkSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { parseDelta, serializeDelta } from '../src/generation/delta.js'
import { applyDeltas, bufferReader } from '../src/generation/delta-apply.js'
import { parseRecord } from '../src/generation/record.js'
import type { ManifestEntry } from '../src/manifest/entry.js'
import { parseManifest, serializeManifest } from '../src/manifest/format.js'
import { indexLines, type LineTable } from '../src/manifest/manifest-lines.js'
import { planFromDeltas } from '../src/sync/delta-plan.js'
import { tableLines } from '../src/sync/list-lines.js'
import { readTorrentInfo } from '../src/torrent/read.js'
import { runCli } from '../testbed/cli.js'
import { HOST_PORT, prepareHost, startHost, type TestHost } from '../testbed/host.js'
import { assertSameTree, settleDirMtimes } from '../testbed/same-tree.js'
import { tempDir, writeTree } from '../testbed/tree.js'

/**
 * An update planned from the deltas alone (docs/SCALE.md, "Planning an update from the
 * deltas"): DEST applied the previous generation, so only the paths the deltas name are
 * looked at. Every kind of change goes through it (content, mode, a new folder, a removed
 * folder, a file that becomes a folder and back, a symlink retargeted, a new hardlink); a stray
 * file no delta names is left alone (proof that DEST was not walked) and removed by --rescan;
 * DEST not as its list says at a changed path falls back to the walk, and says so.
 */
const ADDR = '127.0.3.71'

interface PullJson {
  route: string
  planned?: string
  deltas?: number
  bytesReceived: number
  filesFetched: number
  upToDate: boolean
  infoHash: string
  torrents?: { rebuilt: number; kept: number; fetched: number }
}

function initialFiles(): Record<string, string> {
  const files: Record<string, string> = {}
  for (let i = 0; i < 24; i++) files[`pool/main/p${i % 3}/pkg${i}.deb`] = `package ${i} `.repeat(200 + i * 5)
  files['pool/old/gone1.deb'] = 'gone 1 '.repeat(100)
  files['pool/old/sub/gone2.deb'] = 'gone 2 '.repeat(100)
  files['pool/main/p0/becomes-folder'] = 'a file for now'
  files['dists/stable/Release'] = 'Release 0\n'
  return files
}

/** One generation's worth of every kind of change, made in the host's tree. */
function change(repo: string): void {
  writeTree(repo, {
    'pool/main/p1/pkg1.deb': 'package 1 changed '.repeat(230),
    'pool/main/p9/new/pkg-new.deb': 'a new package '.repeat(120),
    'pool/main/p2/moved.deb': readFileSync(join(repo, 'pool/main/p2/pkg2.deb')), // a rename: copied locally, not fetched
    'dists/stable/Release': 'Release 1\n',
  })
  rmSync(join(repo, 'pool/main/p2/pkg2.deb'))
  rmSync(join(repo, 'pool/old'), { recursive: true })
  rmSync(join(repo, 'pool/main/p0/becomes-folder'))
  writeTree(repo, { 'pool/main/p0/becomes-folder/inside.deb': 'now a folder '.repeat(50) })
  chmodSync(join(repo, 'pool/main/p0/pkg3.deb'), 0o600)
  utimesSync(join(repo, 'pool/main/p1/pkg4.deb'), new Date('2025-05-05T05:05:05Z'), new Date('2025-05-05T05:05:05Z'))
  unlinkSync(join(repo, 'latest'))
  symlinkSync('pool/main/p1/pkg1.deb', join(repo, 'latest'))
  linkSync(join(repo, 'pool/main/p0/pkg6.deb'), join(repo, 'pool/main/p0/pkg6-link.deb'))
  settleDirMtimes(repo)
}

async function pull(dest: string, ...extra: string[]): Promise<{ json: PullJson; stderr: string }> {
  return pullFrom(`dtp://${ADDR}:${HOST_PORT}/deb`, dest, ...extra)
}

async function pullFrom(source: string, dest: string, ...extra: string[]): Promise<{ json: PullJson; stderr: string }> {
  const r = await runCli(['--json', 'pull', source, dest, ...extra])
  assert.equal(r.code, 0, r.stderr)
  const summary = r.stdout.trim().split('\n').map(l => JSON.parse(l) as PullJson & { event: string }).find(l => l.event === 'summary')!
  return { json: summary, stderr: r.stderr }
}

async function regenerate(host: TestHost): Promise<void> {
  assert.equal((await host.cli('gendsync')).code, 0)
  assert.equal((await host.cli('reload')).code, 0)
}

/** Contents of `next` that no entry of `have` holds: what the update must download. */
function bytesToFetch(have: Buffer, next: Buffer): number {
  const held = new Set(parseManifest(have, 'have').entries.filter(e => e.sha256).map(e => e.sha256!.toString('hex')))
  const wanted = new Map<string, number>()
  for (const e of parseManifest(next, 'next').entries) if (e.type === 'f' && !held.has(e.sha256!.toString('hex'))) wanted.set(e.sha256!.toString('hex'), e.size)
  return [...wanted.values()].reduce((a, b) => a + b, 0)
}

/** A host serving generation 1 of the test repository (a symlink among its files). */
async function servedHost(address: string): Promise<{ host: TestHost; repo: string }> {
  const host = await prepareHost(address, { deb: initialFiles() })
  const repo = join(host.webroot, 'deb')
  symlinkSync('pool/main/p0/pkg0.deb', join(repo, 'latest'))
  settleDirMtimes(repo)
  assert.equal((await host.cli('gendsync')).code, 0)
  await startHost(host, ['deb'])
  return { host, repo }
}

/** Removes a file DEST should not have, leaving its folder's mtime as it was. */
function removeStray(path: string): void {
  const dir = join(path, '..')
  const mtime = statSync(dir).mtime
  rmSync(path)
  utimesSync(dir, mtime, mtime)
}

test('an update planned from the deltas: exact bytes, nothing else looked at; --rescan walks; fallback when DEST is not as its list says', async () => {
  const { host, repo } = await servedHost(ADDR)
  const key = (await host.cli('key')).stdout.trim()
  const dir = tempDir('dsync-deltaplan-')
  const [planned, rescanned, odd] = ['planned', 'rescanned', 'odd'].map(n => join(dir, n))
  assert.equal((await pull(planned, '--key', key)).json.route, 'full')
  for (const d of [rescanned, odd]) execFileSync('cp', ['-a', planned, d])

  change(repo)
  await regenerate(host)
  const newList = readFileSync(join(repo, '.dsync', 'data.dsync'))
  // A file no delta names: only a walk of DEST can see it.
  for (const d of [planned, rescanned]) writeTree(d, { 'pool/main/p1/stray.txt': 'not upstream' })
  // DEST not as its list says at a path the delta changes: a folder where pkg1.deb was.
  rmSync(join(odd, 'pool/main/p1/pkg1.deb'))
  mkdirSync(join(odd, 'pool/main/p1/pkg1.deb/hand-made'), { recursive: true })

  const old = readFileSync(join(planned, '.dsync', 'data.dsync'))
  const a = await pull(planned, '--key', key)
  assert.equal(a.json.route, 'deltas')
  assert.equal(a.json.planned, 'deltas', a.stderr)
  assert.equal(a.json.bytesReceived, bytesToFetch(old, newList))
  assert.ok(existsSync(join(planned, 'pool/main/p1/stray.txt')), 'DEST was walked: a path no delta names was looked at')
  removeStray(join(planned, 'pool/main/p1/stray.txt'))
  await assertSameTree(repo, planned)
  assert.equal(statSync(join(planned, 'pool/main/p0/pkg6-link.deb')).ino, statSync(join(planned, 'pool/main/p0/pkg6.deb')).ino)
  const again = await pull(planned, '--key', key)
  assert.equal(again.json.bytesReceived, 0)
  assert.equal(again.json.upToDate, true)

  const r = await pull(rescanned, '--key', key, '--rescan')
  assert.equal(r.json.route, 'deltas')
  assert.equal(r.json.planned, 'walk')
  assert.ok(!existsSync(join(rescanned, 'pool/main/p1/stray.txt')), '--rescan removes what upstream does not have')
  await assertSameTree(repo, rescanned)

  const o = await pull(odd, '--key', key)
  assert.equal(o.json.route, 'deltas')
  assert.equal(o.json.planned, 'walk')
  assert.match(o.stderr, /not planned from the deltas alone \(pool\/main\/p1\/pkg1\.deb is a folder in DEST/)
  await assertSameTree(repo, odd)
})

test('a delta-planned update killed after each apply step: the re-run is planned from the deltas again and converges, fetching nothing', async t => {
  const addr = '127.0.3.72'
  const { host, repo } = await servedHost(addr)
  const dir = tempDir('dsync-deltaplan-kill-')
  const v1 = join(dir, 'v1')
  const source = `dtp://${addr}:${HOST_PORT}/deb`
  assert.equal((await runCli(['pull', source, v1])).code, 0)
  change(repo)
  await regenerate(host)
  for (const fault of ['apply:mkdirs', 'apply:files:1', 'apply:files', 'apply:index', 'apply:deletes:1', 'apply:deletes']) {
    const dest = join(dir, fault.replace(/:/g, '-'))
    execFileSync('cp', ['-a', v1, dest])
    const killed = await runCli(['--json', 'pull', source, dest], { env: { ...process.env, DSYNC_FAULT: fault } })
    assert.equal(killed.code, -1, `${fault}: the run was killed by the fault hook (exit ${killed.code}, ${killed.stderr})`)
    const r = await runCli(['--json', 'pull', source, dest])
    assert.equal(r.code, 0, `${fault}: ${r.stderr}`)
    const json = r.stdout.trim().split('\n').map(l => JSON.parse(l) as PullJson & { event: string }).find(l => l.event === 'summary')!
    assert.equal(json.planned, 'deltas', `${fault}: ${r.stderr}`)
    assert.equal(json.bytesReceived, 0, `${fault}: everything was staged before the apply`)
    await assertSameTree(repo, dest)
    t.diagnostic(`${fault}: re-run planned from the deltas, 0 bytes, converged`)
  }
})

test('a rebuilt list that breaks a whole-list rule at a delta\'s paths is refused with file and line, nothing planned', async () => {
  const dest = tempDir('dsync-deltaplan-rules-')
  writeTree(dest, { 'pool/a.deb': 'a', 'pool/sub/b.deb': 'b' })
  const sha = (c: string) => Buffer.from(createHash('sha256').update(c).digest())
  const t = 1700000000
  const entries: ManifestEntry[] = [
    { type: 'd', path: 'pool', mode: 0o755, size: 0, mtime: t },
    { type: 'f', path: 'pool/a.deb', mode: 0o644, size: 1, mtime: t, sha256: sha('a') },
    { type: 'd', path: 'pool/sub', mode: 0o755, size: 0, mtime: t },
    { type: 'f', path: 'pool/sub/b.deb', mode: 0o644, size: 1, mtime: t, sha256: sha('b') },
  ]
  const previous = serializeManifest(entries, 16384)
  const table = (b: Buffer) => indexLines(b) as LineTable
  const plan = (lines: string[]) => {
    const delta = parseDelta(serializeDelta({ seq: 2, from: '0'.repeat(64), to: '0'.repeat(64), pieceLength: 16384, upserts: lines.filter(l => !l.startsWith('-')).length, removals: lines.filter(l => l.startsWith('-')).length }, lines))
    const applied = applyDeltas(bufferReader(previous), [delta])
    return planFromDeltas({ dest, before: applied.before, previousEntries: applied.previousEntries, next: tableLines(table(applied.manifest)), deltas: [delta], file: 'rebuilt data.dsync' })
  }
  const file = (path: string, c: string) => `f\t0644\t${c.length}\t${t}\t${sha(c).toString('hex')}\t${path}`
  // A lawful delta plans: one file to fetch.
  const ok = await plan([file('pool/c.deb', 'c')])
  assert.ok(typeof ok !== 'string' && ok.fetch.size === 1 && ok.deletes.length === 0)
  const refused = [
    { lines: [file('pool/a.deb/inside', 'x')], reason: /rebuilt data\.dsync:\d+.*parent folder is not listed as a directory/ },
    { lines: [file('pool/sub', 'now a file')], reason: /rebuilt data\.dsync:\d+.*parent folder is not listed as a directory/ },
    { lines: [`h\t0644\t1\t${t}\t${sha('b').toString('hex')}\tpool/b-link\tpool/sub/b.deb`], reason: /hardlink to a file not listed before it/ },
    { lines: [`h\t0644\t1\t${t}\t${sha('x').toString('hex')}\tpool/sub/z-link\tpool/a.deb`], reason: /hardlink differs from its file/ },
    { lines: [file('pool/../../etc/passwd', 'x')], reason: /unsafe or malformed path/ },
    { lines: ['-\t.dsync/data.dsync'], reason: /unsafe or malformed path/ },
  ]
  for (const r of refused) {
    await assert.rejects(plan(r.lines), (err: Error) => {
      assert.match(err.message, r.reason, r.lines[0])
      return true
    })
  }
  assert.ok(existsSync(join(dest, 'pool/sub/b.deb')))
})

test('killed at apply:commit (data.dsync written, torrent not yet rebuilt): the re-run finishes the commit, and a host re-serving DEST serves the record\'s torrent', async () => {
  const [addr, mirrorAddr] = ['127.0.3.78', '127.0.3.79']
  const { host, repo } = await servedHost(addr)
  // DEST is in a second host's webroot: that host re-serves it once the pull is done.
  const mirror = await prepareHost(mirrorAddr, {})
  const dest = join(mirror.webroot, 'deb')
  const source = `dtp://${addr}:${HOST_PORT}/deb`
  assert.equal((await runCli(['pull', source, dest])).code, 0)
  change(repo)
  await regenerate(host)
  const killed = await runCli(['--json', 'pull', source, dest], { env: { ...process.env, DSYNC_FAULT: 'apply:commit' } })
  assert.equal(killed.code, -1, `killed by the fault hook (exit ${killed.code}, ${killed.stderr})`)
  const record = parseRecord(readFileSync(join(repo, '.dsync', 'generation')))
  assert.ok(readFileSync(join(dest, '.dsync', 'generation')).equals(record.bytes), 'the kill came after the record was written')
  assert.notEqual(readTorrentInfo(readFileSync(join(dest, '.dsync', 'deb.torrent'))).infoHash, record.torrent, 'the kill came before the torrent')

  const r = await pullFrom(source, dest)
  assert.equal(r.json.bytesReceived, 0)
  assert.match(r.stderr, /an earlier run stopped before writing it/)
  // Rebuilt here from the list DEST kept for that, not fetched.
  assert.deepEqual(r.json.torrents, { rebuilt: 1, kept: 0, fetched: 0 })
  assert.ok(!existsSync(join(dest, '.dsync', 'data.dsync.previous')), 'the kept list is gone once the torrent is written')
  assert.equal(readTorrentInfo(readFileSync(join(dest, '.dsync', 'deb.torrent'))).infoHash, record.torrent, `DEST's torrent is the record's: ${r.stderr}`)
  assert.match(readFileSync(join(dest, '.dsync', 'deb.magnet'), 'utf8'), new RegExp(`urn:btih:${record.torrent}`))
  await assertSameTree(repo, dest)
  // A second re-run has nothing left to finish.
  assert.equal((await pullFrom(source, dest)).json.upToDate, true)

  // A host re-serving DEST: a client pulling from it gets the record's generation.
  writeFileSync(join(mirror.home, 'repos', 'deb.conf'), `repo=deb\nsave=${dest}\ndsync=true\n`)
  const g = await mirror.cli('gendsync')
  assert.equal(g.code, 0, g.stderr)
  await startHost(mirror, ['deb'])
  const fresh = join(tempDir('dsync-deltaplan-commit-'), 'fresh')
  const f = await pullFrom(`dtp://${mirrorAddr}:${HOST_PORT}/deb`, fresh)
  assert.equal(f.json.infoHash, record.torrent)
  await assertSameTree(repo, fresh)
})
