import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { CLI, runCli } from '../testbed/cli.js'
import { hostileInfos, torrentOf } from '../testbed/craft.js'
import { assertSameTree } from '../testbed/same-tree.js'
import { hasLibtorrent, startLibtorrentSeeder } from '../testbed/seeders.js'
import { makeHome, tempDir } from '../testbed/tree.js'
import { makeUpstream, pullCli } from '../testbed/upstream.js'

// `dsync sync REPO` (DSYNC: -sync): the status file, retries with a doubling delay for network
// failures only, and the delete guard with a repository's own delete-limit=. Addresses 127.0.10.x.

/** A test HTTP server standing in for a dtp:// host; records when each path was asked for. */
async function fakeHost(address: string, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ port: number; hits: { url: string; at: number }[] }> {
  const hits: { url: string; at: number }[] = []
  const server = createServer((req, res) => {
    hits.push({ url: req.url ?? '', at: Date.now() })
    handler(req, res)
  })
  await new Promise<void>(resolve => server.listen({ host: address, port: 0 }, () => resolve()))
  after(() => {
    server.closeAllConnections()
    server.close()
  })
  return { port: (server.address() as { port: number }).port, hits }
}

/** A downstream home syncing repo `rocky` from `source` into its webroot, with a status file. */
function downstream(source: string, extra = ''): { home: string; save: string; status: string; conf: string; write(extra: string): void } {
  const base = tempDir()
  const h = makeHome(base, {})
  const save = join(h.webroot, 'rocky')
  const status = join(base, 'rocky.status')
  const conf = join(h.home, 'repos/rocky.conf')
  const write = (more: string) => writeFileSync(conf, `repo=rocky\nsave=${save}\ndsync-url=${source}\nstatus=${status}\n${more}`)
  write(extra)
  return { home: h.home, save, status, conf, write }
}

test('dsync sync retries a network failure with a doubling delay; the status file says 2 while it runs, 0 when it gave up', { timeout: 120_000 }, async () => {
  let statusDuringRun: string | undefined
  let d: ReturnType<typeof downstream> | undefined
  // An attempt asks for the repository info (and, beside it, the signed record): its info request marks it.
  const attempts = () => host.hits.filter(h => h.url === '/rocky/')
  const host = await fakeHost('127.0.10.2', (req, res) => {
    // Read while the sync is between attempts: it is still running.
    if (req.url === '/rocky/' && attempts().length === 2) statusDuringRun = existsSync(d!.status) ? readFileSync(d!.status, 'utf8') : 'no status file'
    res.writeHead(503).end()
  })
  d = downstream(`dtp://127.0.10.2:${host.port}/rocky`, 'retries=2\n')
  const r = await runCli(['--home', d.home, 'sync', 'rocky'])
  assert.equal(r.code, 6, r.stderr)
  const lines = r.stderr.trim().split('\n')
  assert.equal(lines.length, 3, r.stderr)
  assert.match(lines[0], /rocky: attempt 1 of 3 failed: .*HTTP 503; retrying in 2s/)
  assert.match(lines[1], /rocky: attempt 2 of 3 failed: .*HTTP 503; retrying in 4s/)
  assert.match(lines[2], /^dsync: cannot fetch http:\/\/127\.0\.10\.2:\d+\/rocky\/: HTTP 503$/)
  const at = attempts().map(h => h.at)
  assert.equal(at.length, 3, `three attempts: ${JSON.stringify(host.hits)}`)
  // Lower bounds only (a loaded machine may be slower, never faster): 2 s, then 4 s.
  assert.ok(at[1] - at[0] >= 2000, `first retry after ${at[1] - at[0]} ms`)
  assert.ok(at[2] - at[1] >= 4000, `second retry after ${at[2] - at[1]} ms: the delay doubles`)
  assert.equal(statusDuringRun, '2\n', 'status 2 while the sync runs')
  assert.equal(readFileSync(d.status, 'utf8'), '0\n')
})

test('dsync sync stopped by SIGTERM: one line says so, the status file reads 0 (not 2), no attempt after the stop, the next run takes the lock', { timeout: 120_000 }, async () => {
  const host = await fakeHost('127.0.10.4', (_req, res) => res.writeHead(503).end())
  const d = downstream(`dtp://127.0.10.4:${host.port}/rocky`, 'retries=5\n')
  const child = spawn(process.execPath, [CLI, '--home', d.home, 'sync', 'rocky'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (b: Buffer) => (stderr += b))
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(resolve => child.on('close', (code, signal) => resolve({ code, signal })))
  // Stop it while it waits to retry: the sync is running (status 2) and between attempts.
  const deadline = Date.now() + 30_000
  while (!/attempt 1 of 6 failed/.test(stderr) && Date.now() < deadline) await new Promise(r => setTimeout(r, 50))
  assert.match(stderr, /attempt 1 of 6 failed/)
  assert.equal(readFileSync(d.status, 'utf8'), '2\n', 'status 2 while it runs')
  child.kill('SIGTERM')
  const end = await ended
  assert.deepEqual(end, { code: 1, signal: null }, stderr)
  assert.match(stderr, /rocky: stopped \(SIGTERM\); the tree is left as the last completed step made it/)
  assert.equal(readFileSync(d.status, 'utf8'), '0\n', 'a stopped sync is not left "running"')
  const hits = host.hits.length
  await new Promise(r => setTimeout(r, 2500)) // past the 2 s retry delay: no attempt comes
  assert.equal(host.hits.length, hits, 'no attempt after the stop')
  // The next run is not locked out by the stopped one's lock file.
  d.write('retries=0\n')
  const next = await runCli(['--home', d.home, 'sync', 'rocky'])
  assert.equal(next.code, 6, next.stderr)
  assert.doesNotMatch(next.stderr, /lock/)
})

test('dsync sync does not retry hostile input: one request, exit 4, status 0', { timeout: 60_000 }, async () => {
  const [, hostile, reason] = hostileInfos[0]
  const host = await fakeHost('127.0.10.3', (req, res) => {
    if (req.url === '/rocky/') return res.writeHead(200).end(JSON.stringify({ torrent: 'rocky.torrent' }))
    res.writeHead(200).end(torrentOf(hostile()))
  })
  const d = downstream(`dtp://127.0.10.3:${host.port}/rocky`, 'retries=3\n')
  const r = await runCli(['--home', d.home, 'sync', 'rocky'])
  assert.equal(r.code, 4, r.stderr)
  assert.match(r.stderr, reason)
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
  // The record is asked for beside the info (two connections: either may arrive first); each path once.
  assert.deepEqual(host.hits.map(h => h.url).sort(), ['/rocky/', '/rocky/generation', '/rocky/rocky.torrent'], 'asked once, not retried')
  assert.equal(readFileSync(d.status, 'utf8'), '0\n')
})

test('-sync: a repository\'s delete-limit= refuses what the default would allow, is not retried, and a higher limit lets it through', {
  skip: hasLibtorrent ? false : 'python3-libtorrent is not installed', timeout: 180_000,
}, async () => {
  const files: Record<string, string> = {}
  for (let i = 0; i < 40; i++) files[`pool/p${i % 4}/pkg${i}.deb`] = `package ${i}\n`.repeat(50 + i)
  const up = await makeUpstream(files)
  let seeder = await startLibtorrentSeeder(up.torrent, up.webroot, '127.0.10.4')
  const d = downstream(up.torrent, 'retries=2\ndelete-limit=20\n')
  const first = await runCli(['--home', d.home, '-sync', 'rocky', '--peer', seeder.address])
  assert.equal(first.code, 0, first.stderr)
  assert.equal(readFileSync(d.status, 'utf8'), '1\n')
  seeder.kill()

  // 12 of 45 entries (27%): over this repository's 20%, under the default 50%.
  for (let i = 0; i < 12; i++) unlinkSync(join(up.save, `pool/p${i % 4}/pkg${i}.deb`))
  await up.regenerate()
  seeder = await startLibtorrentSeeder(up.torrent, up.webroot, '127.0.10.4')
  const refused = await runCli(['--home', d.home, 'sync', 'rocky', '--peer', seeder.address])
  assert.equal(refused.code, 1, refused.stderr)
  assert.match(refused.stderr, /refusing to delete 12 of \d+ entries .*20/)
  assert.equal(refused.stderr.trim().split('\n').length, 1, `one line, no retry: ${refused.stderr}`)
  assert.equal(readFileSync(d.status, 'utf8'), '0\n')
  assert.ok(existsSync(join(d.save, 'pool/p0/pkg0.deb')), 'nothing deleted')

  d.write('retries=2\ndelete-limit=30\n')
  const allowed = await runCli(['--home', d.home, 'sync', 'rocky', '--peer', seeder.address])
  assert.equal(allowed.code, 0, allowed.stderr)
  assert.equal(readFileSync(d.status, 'utf8'), '1\n')
  await assertSameTree(up.save, d.save)
})

test('the delete guard leaves small trees alone: 10 of 14 entries may go without --force', {
  skip: hasLibtorrent ? false : 'python3-libtorrent is not installed', timeout: 120_000,
}, async () => {
  const files: Record<string, string> = { 'dists/Release': 'Suite: small\n' }
  for (let i = 0; i < 11; i++) files[`pool/pkg${i}.deb`] = `package ${i}\n`
  const up = await makeUpstream(files)
  let seeder = await startLibtorrentSeeder(up.torrent, up.webroot, '127.0.10.5')
  const dest = join(tempDir(), 'mirror')
  assert.equal((await pullCli(up.torrent, dest, [seeder.address])).code, 0)
  seeder.kill()
  for (let i = 0; i < 10; i++) unlinkSync(join(up.save, `pool/pkg${i}.deb`))
  await up.regenerate()
  seeder = await startLibtorrentSeeder(up.torrent, up.webroot, '127.0.10.5')
  // 10 deletions of 14 entries is 71%, over the 50% default, but at most 10 entries is ordinary churn.
  const r = await pullCli(up.torrent, dest, [seeder.address])
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.summary!.removed, 10)
  await assertSameTree(up.save, dest)
})
