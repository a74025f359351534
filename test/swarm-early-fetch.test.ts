import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { test } from 'node:test'
import { makePeerId } from '../src/shared/peer-id.js'
import { Downloader } from '../src/swarm/downloader.js'
import { PeerConnection } from '../src/swarm/peer.js'
import { EARLY_MIN_BYTES } from '../src/sync/early-fetch.js'
import type { PieceSpan } from '../src/torrent/piece-map.js'
import { runCli } from '../testbed/cli.js'
import { craftRepo, sha256 } from '../testbed/craft.js'
import { hasLibtorrent, startLibtorrentSeeder } from '../testbed/seeders.js'
import { pullCli } from '../testbed/upstream.js'
import { prepareHost, startHost } from '../testbed/host.js'
import { assertSameTree } from '../testbed/same-tree.js'
import { sparseHost } from '../testbed/sparse-host.js'
import { stagingFiles, tempDir } from '../testbed/tree.js'

// A bootstrap asks for its pieces while data.dsync is parsed and the plan built (early-fetch.ts,
// switched on with DSYNC_EARLY_FETCH=1):
// the downloader holds what it verified, up to a bound, until the transfer adopts it with the
// plan's pieces. Real `dsync service` daemons on 127.0.22.x (port 47921).

const MiB = 1 << 20

test('an early fetch holds its verified pieces up to its bound and asks for no more; adopted, it delivers each wanted piece once and no other', { timeout: 120_000 }, async () => {
  const { h, info, pieces } = await sparseHost('127.0.22.2', 40 * MiB)

  const peer = await PeerConnection.open({ address: { host: h.address, port: h.port }, infoHash: info.infoHash, peerId: makePeerId(), idleTimeoutMs: 10_000 })
  let requested = 0
  const request = peer.request.bind(peer)
  peer.request = (piece, offset, length, done) => {
    requested += length
    request(piece, offset, length, done)
  }
  try {
    await peer.ready()
    const hold = 8 * MiB
    let early = 0
    const d = new Downloader({ pieces, hashes: info.pieces, holdBytes: hold, onPiece: () => early++ })
    let held = 0
    d.on('piece', (span: PieceSpan) => { held += span.dataLength })
    d.addPeer(peer)
    // Everything asked for lands (the bound stops new requests, not those in flight).
    while (held < hold || peer.downloaded < requested) await new Promise(resolve => d.once('piece', resolve))
    await nextTurn()
    const askedBeforeAdopt = requested
    assert.equal(early, 0, 'no piece leaves a holding downloader before it is adopted')
    assert.ok(askedBeforeAdopt < pieces.length * info.pieceLength / 2, `asked ${askedBeforeAdopt} bytes while holding ${held} (bound ${hold})`)

    // The plan wants every other piece: held ones among them come out at once, the rest are fetched.
    const wanted = pieces.filter(p => p.piece % 2 === 0)
    const got = new Map<number, number>()
    let zeros = true
    d.adopt(wanted, { onPiece: (span, data) => { got.set(span.piece, (got.get(span.piece) ?? 0) + 1); zeros &&= data.every(b => b === 0) } })
    await d.whenDone()
    assert.deepEqual([...got.keys()].sort((a, b) => a - b), wanted.map(p => p.piece))
    assert.ok([...got.values()].every(n => n === 1), 'each wanted piece once')
    assert.ok(zeros, 'the bytes the host serves')
    assert.equal(d.remaining, 0)
    // Adopted with only pieces it holds (more than one turn's handover), it finishes once the last has gone to the sink.
    const d2 = new Downloader({ pieces, hashes: info.pieces, holdBytes: hold, onPiece: () => early++ })
    const heldSpans: PieceSpan[] = []
    d2.on('piece', (span: PieceSpan) => { heldSpans.push(span) })
    d2.addPeer(peer)
    while (heldSpans.reduce((n, p) => n + p.dataLength, 0) < hold) await new Promise(resolve => d2.once('piece', resolve))
    const mine = [...heldSpans].sort((a, b) => a.piece - b.piece)
    let handed = 0
    d2.adopt(mine, { onPiece: () => handed++ })
    await d2.whenDone()
    assert.equal(handed, mine.length, 'finished before every held piece reached the sink')
    assert.equal(early, 0)
    // Stopping a finished downloader changes nothing; a new holding one stopped ends quietly.
    d.stop()
    const unused = new Downloader({ pieces, hashes: info.pieces, holdBytes: hold, onPiece: () => assert.fail('stopped') })
    unused.stop()
    await assert.rejects(unused.whenDone(), /stopped/)
  } finally {
    peer.close('test over')
  }
})

test('a bootstrap of more than EARLY_MIN_BYTES asks for its pieces before the plan; DEST ends as the source', { timeout: 180_000 }, async () => {
  // Random bytes: a held piece that shared a reused buffer would fail its file's SHA-256.
  const files: Record<string, Buffer | string> = { 'dists/stable/InRelease': 'Suite: stable\n' }
  // A longer list: its parse and plan leave the early fetch time to hold pieces.
  for (let i = 0; i < 3000; i++) files[`pool/small/${i % 30}/s${i}.txt`] = `small ${i}\n`
  const count = 96
  const size = Math.ceil(EARLY_MIN_BYTES / count) + 50_000
  const body = randomBytes(count * size)
  for (let i = 0; i < count; i++) files[`pool/main/${i % 8}/pkg${i}.deb`] = body.subarray(i * size, (i + 1) * size)
  const hosts = []
  for (const address of ['127.0.22.3', '127.0.22.4']) {
    const h = await prepareHost(address, { rocky: files })
    const g = await h.cli('--json', 'gendsync')
    assert.equal(g.code, 0, g.stderr)
    await startHost(h, ['rocky'])
    hosts.push(h)
  }
  const dir = tempDir()
  const dest = join(dir, 'mirror')
  const trace = join(dir, 'trace.jsonl')
  const r = await runCli(['--json', 'pull', '--peer', '127.0.22.4:47921', 'dtp://127.0.22.3/rocky', dest], { env: { DSYNC_SWARM_TRACE: trace, DSYNC_EARLY_FETCH: '1' } })
  assert.equal(r.code, 0, r.stderr)
  await assertSameTree(join(hosts[0].webroot, 'rocky'), dest)
  const lines = traceMarks(trace)
  const marks = lines.map(l => l.mark)
  assert.ok(marks.includes('early-fetch'), marks.join(' '))
  assert.ok(marks.indexOf('early-fetch') < marks.indexOf('plan-start'), marks.join(' '))
  // The transfer took over the early fetch's downloader with what it held or had asked for.
  const adopted = lines.find(l => l.mark === 'early-adopted')
  assert.ok(adopted && adopted.held! + adopted.asked! > 0, JSON.stringify(adopted))
  const summary = JSON.parse(r.stdout.trim().split('\n').pop()!)
  assert.ok(Object.keys(summary.bytesPerHost).length >= 1, JSON.stringify(summary.bytesPerHost))
})

test('a bootstrap refused at its list while the early fetch runs exits with one line and leaves nothing in DEST or staging', {
  skip: hasLibtorrent ? false : 'python3-libtorrent is not installed', timeout: 120_000,
}, async () => {
  const base = tempDir()
  const big = randomBytes(EARLY_MIN_BYTES + 1_000_000)
  const torrent = craftRepo(base, 'evil', {
    entryLines: [`f\t0644\t${big.length}\t1700000000\t${sha256(big)}\tbig.bin`, 'l\t0777\t1\t1700000000\t-\t../escape\tx'],
    torrentFiles: { 'big.bin': big }, pieceLength: 256 * 1024,
  })
  const seeder = await startLibtorrentSeeder(torrent, base, '127.0.22.6')
  const dest = join(base, 'mirror')
  const trace = join(base, 'trace.jsonl')
  const r = await pullCli(torrent, dest, [seeder.address], [], { DSYNC_SWARM_TRACE: trace, DSYNC_EARLY_FETCH: '1' })
  assert.equal(r.code, 4, r.stderr)
  assert.match(r.stderr, /unsafe or malformed path/)
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
  const marks = traceMarks(trace).map(l => l.mark)
  assert.ok(marks.includes('early-fetch') && !marks.includes('plan-start'), marks.join(' '))
  assert.ok(!existsSync(dest) || readdirSync(dest).every(n => n === '.dsync'), 'nothing in the live tree')
  assert.deepEqual(stagingFiles(dest), [])
})

function traceMarks(file: string): { mark: string; held?: number; asked?: number }[] {
  return readFileSync(file, 'utf8').trim().split('\n').map(l => JSON.parse(l) as { mark?: string }).filter(l => l.mark !== undefined) as { mark: string }[]
}
