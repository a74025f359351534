import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { craftRepo, hostileInfos, rawInfo, sha256 } from '../testbed/craft.js'
import { FakePeer } from '../testbed/fake-peer.js'
import { hasLibtorrent, startLibtorrentSeeder } from '../testbed/seeders.js'
import { assertSameTree } from '../testbed/same-tree.js'
import { layoutFiles } from '../src/torrent/layout.js'
import { tempDir } from '../testbed/tree.js'
import { makeUpstream, pullCli, type PullRun } from '../testbed/upstream.js'

// Hostile input that arrives over the network rather than as a file: an info dict over
// BEP 9 (magnet links), a torrent or repository info over a dtp:// host's HTTP, size caps on
// all of them, and a peer that sends more than was asked. Each refusal is one line naming
// the source, no stack trace, and DEST is not created. Addresses 127.0.9.x.

/** Waits (bounded) for the server side to see what the client did: its close may come a moment after the client exits. */
async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond() && Date.now() < end) await new Promise(r => setTimeout(r, 50))
}

const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex')

/** Exit `code`, one error line naming the source and reason (after any "dropped peer" warnings), no trace, no DEST. */
function assertRefused(r: PullRun, dest: string, code: number, reason: RegExp, names: RegExp): void {
  assert.equal(r.code, code, r.stderr)
  const lines = r.stderr.trim().split('\n')
  const error = lines.pop()!
  assert.match(error, /^dsync: /, r.stderr)
  assert.match(error, reason)
  assert.match(error, names)
  for (const l of lines) assert.match(l, /^dropped peer /, r.stderr)
  assert.doesNotMatch(r.stderr, /\n\s+at /)
  assert.ok(!existsSync(dest), 'DEST was not created')
}

for (const [name, make, reason] of hostileInfos) {
  test(`BEP 9: an info dict with ${name}, matching the magnet's infohash, is refused before anything is written`, { timeout: 60_000 }, async () => {
    const info = make()
    const peer = await FakePeer.start('127.0.9.2', { info })
    const dest = join(tempDir(), 'mirror')
    const magnet = `magnet:?xt=urn:btih:${sha1(info)}&dn=evil`
    const r = await pullCli(magnet, dest, [peer.address])
    assertRefused(r, dest, 4, reason, new RegExp(sha1(info)))
    assert.ok(peer.metadataRequests > 0, 'the metadata did come over BEP 9')
  })
}

test('BEP 9: a peer announcing metadata over the cap is never asked for it', { timeout: 60_000 }, async () => {
  const info = rawInfo([{ path: ['.dsync', 'data.dsync'], length: 100 }])
  const peer = await FakePeer.start('127.0.9.3', { info, claimSize: (256 << 20) + 1 })
  const dest = join(tempDir(), 'mirror')
  const r = await pullCli(`magnet:?xt=urn:btih:${sha1(info)}`, dest, [peer.address])
  assertRefused(r, dest, 6, /exceeds the cap of 268435456/, new RegExp(peer.address.replace(/\./g, '\\.')))
  assert.equal(peer.metadataRequests, 0, 'no metadata block was requested')
})

test('BEP 9: metadata that does not hash to the magnet\'s infohash is refused', { timeout: 60_000 }, async () => {
  const info = rawInfo([{ path: ['.dsync', 'data.dsync'], length: 100 }])
  const peer = await FakePeer.start('127.0.9.4', { info })
  const dest = join(tempDir(), 'mirror')
  const r = await pullCli(`magnet:?xt=urn:btih:${'ab'.repeat(20)}`, dest, [peer.address])
  assertRefused(r, dest, 6, /metadata does not match the infohash/, new RegExp(peer.address.replace(/\./g, '\\.')))
})

/** A dtp:// host's HTTP side played by a test server: `routes` answer paths, others 404. */
async function fakeDtpHost(address: string, routes: Record<string, (req: IncomingMessage, res: ServerResponse) => void>): Promise<{ url: string; hits: string[] }> {
  const hits: string[] = []
  const server = createServer((req, res) => {
    hits.push(req.url ?? '')
    const route = routes[req.url ?? '']
    if (route) return route(req, res)
    res.writeHead(404).end()
  })
  await new Promise<void>(resolve => server.listen({ host: address, port: 0 }, () => resolve()))
  after(() => {
    server.closeAllConnections()
    server.close()
  })
  const port = (server.address() as { port: number }).port
  return { url: `dtp://${address}:${port}/evil`, hits }
}

const infoJson = (res: ServerResponse) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ torrent: 'evil.torrent' }))

for (const [name, make, reason] of hostileInfos) {
  test(`dtp:// HTTP: a torrent with ${name} is refused before anything is written`, { timeout: 60_000 }, async () => {
    const torrent = Buffer.concat([Buffer.from('d4:info'), make(), Buffer.from('e')])
    const host = await fakeDtpHost('127.0.9.5', {
      '/evil/': (_req, res) => infoJson(res),
      '/evil/evil.torrent': (_req, res) => res.writeHead(200).end(torrent),
    })
    const dest = join(tempDir(), 'mirror')
    const r = await pullCli(host.url, dest, [])
    assertRefused(r, dest, 4, reason, /evil\.torrent/)
  })
}

test('dtp:// HTTP: repository info that is not JSON is a one-line network error naming the URL', { timeout: 60_000 }, async () => {
  const host = await fakeDtpHost('127.0.9.6', { '/evil/': (_req, res) => res.writeHead(200).end('<html>hello</html>') })
  const dest = join(tempDir(), 'mirror')
  assertRefused(await pullCli(host.url, dest, []), dest, 6, /not a DTP host/, /127\.0\.9\.6:\d+\/evil\//)
})

/** Streams `total` bytes (no Content-Length, chunked), honouring backpressure; says whether all went out. */
function endless(res: ServerResponse, total: number, state: { sent: number; finished: boolean; aborted: boolean }): void {
  res.writeHead(200)
  const chunk = Buffer.alloc(64 * 1024, 0x20)
  res.on('close', () => (state.aborted = !state.finished))
  const pump = () => {
    while (state.sent < total) {
      state.sent += chunk.length
      if (!res.write(chunk)) return void res.once('drain', pump)
    }
    state.finished = true
    res.end()
  }
  pump()
}

test('dtp:// HTTP: repository info streamed past its 1 MiB cap is cut off, not read to the end', { timeout: 60_000 }, async () => {
  const state = { sent: 0, finished: false, aborted: false }
  const host = await fakeDtpHost('127.0.9.7', { '/evil/': (_req, res) => endless(res, 1 << 30, state) })
  const dest = join(tempDir(), 'mirror')
  assertRefused(await pullCli(host.url, dest, []), dest, 4, /repository info .* larger than the cap of 1048576 bytes/, /127\.0\.9\.7/)
  await until(() => state.aborted || state.finished)
  assert.ok(state.aborted && !state.finished, `the client hung up before the 1 GiB body was sent (${state.sent} bytes went out)`)
  // What went out is the cap plus what socket buffers hold, not the body.
  assert.ok(state.sent < 32 << 20, `the client stopped reading near the cap: ${state.sent} bytes went out`)
})

test('dtp:// HTTP: a torrent declaring a Content-Length over its 256 MiB cap is refused from the header', { timeout: 60_000 }, async () => {
  const state = { sent: 0, finished: false, aborted: false }
  const host = await fakeDtpHost('127.0.9.8', {
    '/evil/': (_req, res) => infoJson(res),
    '/evil/evil.torrent': (_req, res) => {
      res.setHeader('content-length', String(300 << 20))
      endless(res, 300 << 20, state)
    },
  })
  const dest = join(tempDir(), 'mirror')
  assertRefused(await pullCli(host.url, dest, []), dest, 4, /\.torrent .* larger than the cap of 268435456 bytes/, /evil\.torrent/)
  await until(() => state.aborted || state.finished)
  assert.ok(state.aborted && !state.finished, `the client hung up at the header (${state.sent} bytes went out)`)
  assert.ok(state.sent < 64 << 20, `the client did not read the body: ${state.sent} bytes went out`)
})

test('a peer that sends more than was asked (an unrequested 64 MiB piece) is cut off; the sync completes from an honest host', {
  skip: hasLibtorrent ? false : 'python3-libtorrent is not installed', timeout: 120_000,
}, async () => {
  const files: Record<string, Buffer> = {}
  for (let i = 0; i < 10; i++) files[`pool/p${i}.deb`] = Buffer.alloc(30_000 + i * 1000, i)
  const up = await makeUpstream(files)
  const honest = await startLibtorrentSeeder(up.torrent, up.webroot, '127.0.9.10')
  const flooder = await FakePeer.start('127.0.9.11', { flood: 64 << 20 })
  const dest = join(tempDir(), 'mirror')
  // The flooder first, one connection at a time: it is dialled and must be dropped before the honest host serves.
  const r = await pullCli(up.torrent, dest, [flooder.address, honest.address], ['--connections', '1'])
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stderr, new RegExp(`dropped peer ${flooder.address.replace(/\./g, '\\.')}: sent more data than was requested`))
  assert.ok(flooder.connections >= 1)
  await until(() => flooder.floodCut || flooder.floodWritten >= 64 << 20)
  assert.ok(flooder.floodCut, `the client closed the connection before the 64 MiB went out (${flooder.floodWritten} bytes written)`)
  assert.ok(flooder.floodWritten < 32 << 20, `${flooder.floodWritten} bytes written before the cut`)
  assert.deepEqual(Object.keys(r.summary!.bytesPerHost), [honest.address])
})

/**
 * Pulls `files` (torrent made by hand with `pieceLength`) from a peer serving them with one
 * byte wrong in every piece (or in the pieces `rotten` names: their numbers inside each file),
 * dialled first, and an honest libtorrent seeder: the rotten one must be dropped for its hash
 * checks and the tree must come whole from the honest one.
 */
async function pullPastRottenPeer(files: Record<string, Buffer>, pieceLength: number, addresses: [string, string], env: Record<string, string> = {},
  rotten: (pieces: number) => number[] = pieces => Array.from({ length: pieces }, (_, i) => i)): Promise<PullRun> {
  const lines = Object.entries(files).map(([path, data]) => `f\t0644\t${data.length}\t1700000000\t${sha256(data)}\t${path}`)
  const honestBase = tempDir()
  const rottenBase = tempDir()
  const torrent = craftRepo(honestBase, 'repo', { entryLines: lines, torrentFiles: files, pieceLength })
  craftRepo(rottenBase, 'repo', { entryLines: lines, torrentFiles: files, pieceLength })
  // Same size, wrong bytes in every piece.
  for (const path of Object.keys(files)) {
    const p = join(rottenBase, 'repo', path)
    const data = readFileSync(p)
    for (const i of rotten(Math.ceil(data.length / pieceLength))) data[Math.min(i * pieceLength + 100, data.length - 1)] ^= 0xff
    writeFileSync(p, data)
  }
  // Served as they are on disk: libtorrent's seed mode checks each piece on its first request.
  const layout = layoutFiles(['.dsync/data.dsync', ...Object.keys(files)].map(path => ({ path, length: readFileSync(join(rottenBase, 'repo', path)).length })), pieceLength)
  const bytes = Buffer.concat(layout.map(f => (f.pad ? Buffer.alloc(f.length) : readFileSync(join(rottenBase, 'repo', f.path)))))
  const rottenPeer = await FakePeer.start(addresses[0], { content: { bytes, pieceLength } })
  const honest = await startLibtorrentSeeder(torrent, honestBase, addresses[1])
  const dest = join(tempDir(), 'mirror')
  // The rotten one first, one connection at a time: it must be dropped before the honest one serves.
  const r = await pullCli(torrent, dest, [rottenPeer.address, honest.address], ['--connections', '1'], env)
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stderr, new RegExp(`dropped peer ${rottenPeer.address.replace(/\./g, '\\.')}: .*hash check`))
  await assertSameTree(join(honestBase, 'repo'), dest)
  assert.ok(rottenPeer.blocksServed >= 4, `the rotten peer served ${rottenPeer.blocksServed} blocks`)
  return r
}

/** Four files of 3-4 pieces of 64 KiB (four 16 KiB blocks each), `i` making each one's bytes. */
function multiPieceFiles(PIECE: number): Record<string, Buffer> {
  const files: Record<string, Buffer> = {}
  for (let i = 0; i < 4; i++) files[`p${i}.bin`] = Buffer.from(Array.from({ length: 3 * PIECE + 5000 * (i + 1) }, (_, j) => (j * 7919 + i) & 0xff))
  return files
}

// DSYNC_SHA1_PIECES=1 checks each piece by its SHA-1 as it lands (on the verifier thread with
// DSYNC_STAGE_THREADS=1), as files over UNCHECKED_MAX_BYTES (64 MiB) always are.
test('pieces of several blocks with wrong bytes (checked on the verifier thread) drop their peer; the sync completes from an honest one', {
  skip: hasLibtorrent ? false : 'python3-libtorrent is not installed', timeout: 120_000,
}, async () => {
  // 64 KiB pieces (four blocks each): checked off the event loop. gendsync picks 16 KiB below
  // 512 MiB of content, so the torrent is made by hand.
  await pullPastRottenPeer(multiPieceFiles(65536), 65536, ['127.0.9.12', '127.0.9.13'], { DSYNC_STAGE_THREADS: '1', DSYNC_SHA1_PIECES: '1' })
})

// Files of several pieces (up to 64 MiB) come unchecked: only their SHA-256, on a stage worker or
// here inline, checks them; when it fails, the transfer reads the `.part` back and finds the bad
// piece by its SHA-1 (part-read-back.ts). One piece wrong in each file, the others right.
for (const [mode, env] of [['stage workers', { DSYNC_STAGE_THREADS: '1' }], ['staged inline', {}]] as const) {
  test(`files of several pieces with one wrong piece (${mode}): the file fails its SHA-256, the read-back names the piece, its peer is dropped and it comes again from an honest one`, {
    skip: hasLibtorrent ? false : 'python3-libtorrent is not installed', timeout: 120_000,
  }, async () => {
    await pullPastRottenPeer(multiPieceFiles(65536), 65536, mode === 'stage workers' ? ['127.0.9.17', '127.0.9.18'] : ['127.0.9.19', '127.0.9.20'], env, () => [1])
  })
}

// A pull this small checks one-piece files' SHA-256 on the event loop (stage-inline.ts);
// DSYNC_STAGE_THREADS=1 sends them to the verifier thread in packed batches, as a bigger pull does.
test('one-piece files with wrong bytes, checked by their SHA-256 on the verifier thread, drop their peer; the sync completes from an honest one', {
  skip: hasLibtorrent ? false : 'python3-libtorrent is not installed', timeout: 120_000,
}, async () => {
  const files: Record<string, Buffer> = {}
  // 9-16 KB: big enough to be sent to the verifier (WHOLE_OFF_THREAD_BYTES), one 16 KiB piece each.
  for (let i = 0; i < 12; i++) files[`s${String(i).padStart(2, '0')}.deb`] = Buffer.from(Array.from({ length: 9000 + 600 * i }, (_, j) => (j * 131 + i) & 0xff))
  await pullPastRottenPeer(files, 16384, ['127.0.9.14', '127.0.9.15'], { DSYNC_STAGE_THREADS: '1' })
})

test('a peer that sends one block of a piece and closes, again and again, is given up after three connections, not redialled for the whole pull', { timeout: 120_000 }, async () => {
  // Attempts start again only after a verified piece (src/swarm/swarm.ts): blocks that never make
  // one must not keep a peer in the rotation. 64 KiB pieces (four 16 KiB blocks): the peer answers
  // one request per connection, so no piece of the files ever completes from it. Alone, the pull
  // must fail once it is given up (seconds), not run until the stall timeout redialling it.
  const PIECE = 65536
  // Whole pieces only: a short last piece of one block would complete from a single answer.
  const files: Record<string, Buffer> = { 'a.bin': Buffer.alloc(3 * PIECE, 0x61), 'b.bin': Buffer.alloc(2 * PIECE, 0x62) }
  const lines = Object.entries(files).map(([path, data]) => `f\t0644\t${data.length}\t1700000000\t${sha256(data)}\t${path}`)
  const base = tempDir()
  const torrent = craftRepo(base, 'repo', { entryLines: lines, torrentFiles: files, pieceLength: PIECE })
  const layout = layoutFiles(['.dsync/data.dsync', ...Object.keys(files)].map(path => ({ path, length: readFileSync(join(base, 'repo', path)).length })), PIECE)
  const bytes = Buffer.concat(layout.map(f => (f.pad ? Buffer.alloc(f.length) : readFileSync(join(base, 'repo', f.path)))))
  const dripper = await FakePeer.start('127.0.9.16', { content: { bytes, pieceLength: PIECE }, blocksPerConnection: 1 })
  const dest = join(tempDir(), 'mirror')
  const started = Date.now()
  const r = await pullCli(torrent, dest, [dripper.address])
  const seconds = (Date.now() - started) / 1000
  assert.notEqual(r.code, 0, r.stderr)
  const error = r.stderr.trim().split('\n').pop()!
  assert.match(error, /^dsync: /, r.stderr)
  assert.ok(error.includes(dripper.address), error)
  assert.doesNotMatch(r.stderr, /\n\s+at /)
  // data.dsync (one block, so one whole piece) may come on the first connection and start the
  // count once; after it, three connections that each deliver a block and no piece.
  assert.ok(dripper.connections <= 4, `${dripper.connections} connections to a peer that never completes a piece (${seconds} s)`)
  assert.ok(dripper.blocksServed >= 2, `it was asked for blocks (${dripper.blocksServed})`)
})
