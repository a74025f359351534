import assert from 'node:assert/strict'
import { linkSync, mkdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { test } from 'node:test'
import bencode from 'bencode'
import { parseManifest } from '../src/manifest/format.js'
import { referenceDigests } from '../testbed/digests.js'
import { runCli } from '../testbed/cli.js'
import { settleDirMtimes } from '../testbed/same-tree.js'
import { makeHome, OLD_MTIME, tempDir, writeTree } from '../testbed/tree.js'

interface GenJson {
  repo: string
  changed: boolean
  infoHash: string
  hashedFiles: number
  reusedFiles: number
  pieceLength: number
  entries: number
}

async function gendsync(home: string, ...repos: string[]): Promise<GenJson[]> {
  const r = await runCli(['--home', home, '--json', 'gendsync', ...repos])
  assert.equal(r.code, 0, r.stderr)
  return r.stdout.trim().split('\n').map(l => JSON.parse(l) as GenJson)
}

function sampleFiles(): Record<string, string | Buffer> {
  const files: Record<string, string | Buffer> = {}
  for (let i = 0; i < 40; i++) files[`pool/main/p${i % 5}/pkg${i}.deb`] = Buffer.alloc(1000 + i * 997, i)
  files['dists/stable/Release'] = 'Origin: test\n'
  files['dists/stable/main/binary-amd64/Packages'] = 'Package: pkg0\n'
  files['big.iso'] = Buffer.alloc(200_000, 7)
  return files
}

test('same tree in two folders gives byte-identical data.dsync, torrent and infohash', async () => {
  const a = makeHome(join(tempDir(), 'a'), { rocky: sampleFiles() })
  const b = makeHome(join(tempDir(), 'b'), { rocky: sampleFiles() })
  for (const h of [a, b]) mkdirSync(join(h.webroot, 'rocky', 'empty-dir'))
  // Directory mtimes are part of the manifest; rsync -a carries them, so set them alike (every
  // folder: two trees written across a second boundary differ in their inner folders' mtimes).
  for (const h of [a, b]) settleDirMtimes(join(h.webroot, 'rocky'))
  const [ra] = await gendsync(a.home)
  const [rb] = await gendsync(b.home)
  assert.equal(ra.infoHash, rb.infoHash)
  assert.match(ra.infoHash, /^[0-9a-f]{40}$/)
  const files = ['data.dsync', 'rocky.torrent', 'rocky.magnet']
  for (const f of files) {
    assert.ok(readFileSync(join(a.webroot, 'rocky/.dsync', f)).equals(readFileSync(join(b.webroot, 'rocky/.dsync', f))), f)
  }
  // A different mtime on one file changes the generation.
  utimesSync(join(b.webroot, 'rocky/big.iso'), new Date('2025-01-01'), new Date('2025-01-01'))
  const [rb2] = await gendsync(b.home)
  assert.notEqual(rb2.infoHash, ra.infoHash)
})

test('touching one file re-reads one file; an unchanged tree rewrites nothing', async () => {
  const h = makeHome(tempDir(), { rocky: sampleFiles() })
  const [full] = await gendsync(h.home)
  assert.equal(full.hashedFiles, 43)
  const manifestPath = join(h.webroot, 'rocky/.dsync/data.dsync')
  const before = readFileSync(manifestPath)

  const [same] = await gendsync(h.home)
  assert.equal(same.hashedFiles, 0)
  assert.equal(same.changed, false)
  assert.equal(same.infoHash, full.infoHash)

  const touched = join(h.webroot, 'rocky/pool/main/p3/pkg3.deb')
  writeFileSync(touched, Buffer.alloc(4000, 99))
  utimesSync(touched, new Date('2025-02-03'), new Date('2025-02-03'))
  const [incr] = await gendsync(h.home)
  assert.equal(incr.hashedFiles, 1)
  assert.equal(incr.reusedFiles, 42)
  assert.equal(incr.changed, true)
  assert.notEqual(incr.infoHash, full.infoHash)
  assert.ok(!readFileSync(manifestPath).equals(before))

  // The incremental result equals a from-scratch generation of the same tree.
  const copy = makeHome(tempDir(), {})
  // cp -a keeps directory mtimes too, as rsync -a does.
  execFileSync('cp', ['-a', join(h.webroot, 'rocky'), join(copy.webroot, 'rocky')])
  writeFileSync(join(copy.home, 'repos/rocky.conf'), `repo=rocky\nsave=${join(copy.webroot, 'rocky')}\ndsync=true\n`)
  const [scratch] = await runCli(['--home', copy.home, '--json', 'gendsync']).then(r => {
    assert.equal(r.code, 0, r.stderr)
    return r.stdout.trim().split('\n').map(l => JSON.parse(l) as GenJson)
  })
  assert.equal(scratch.infoHash, incr.infoHash)
})

test('a file modified just now is hashed again next time (racy mtime is not trusted)', async t => {
  const h = makeHome(tempDir(), { rocky: { 'a.txt': 'a', 'b.txt': 'b' } })
  // An mtime newer than the scan is never trusted, however slowly a loaded machine starts it.
  const ahead = join(h.webroot, 'rocky/ahead.txt')
  writeFileSync(ahead, 'mtime a minute ahead')
  const soon = new Date(Date.now() + 60_000)
  utimesSync(ahead, soon, soon)
  // One written now: inside the 2 s window only if the scan starts within it. The scan's start
  // is known after the fact (end - its own duration, a late estimate): the count is asserted
  // only when the start was surely inside the window, never guessed on a slow machine.
  const written = Date.now()
  writeFileSync(join(h.webroot, 'rocky/fresh.txt'), 'written now')
  const [first] = await gendsync(h.home) as (GenJson & { seconds: number })[]
  const startedBy = Date.now() - first.seconds * 1000
  const [again] = await gendsync(h.home)
  if (startedBy - written < 1500) assert.equal(again.hashedFiles, 2, 'both racy files hashed again')
  else {
    t.diagnostic(`the first scan started ${startedBy - written} ms after the write: only the mtime-ahead file is checked`)
    assert.ok(again.hashedFiles >= 1)
  }
})

test('symlinks, hardlinks, empty dirs and odd names are represented faithfully', async () => {
  const odd = ['with space.deb', 'new\nline.deb', 'tab\there', '한국어 패키지.rpm', 'back\\slash', 'emoji-🙂.txt']
  const files: Record<string, string> = {}
  for (const n of odd) files[`pool/${n}`] = `content of ${n}`
  const h = makeHome(tempDir(), { rocky: files })
  const root = join(h.webroot, 'rocky')
  mkdirSync(join(root, 'empty'))
  symlinkSync('pool/with space.deb', join(root, 'latest'))
  symlinkSync('/etc/passwd', join(root, 'escape'))
  symlinkSync('../../outside', join(root, 'pool/up'))
  linkSync(join(root, 'pool/tab\there'), join(root, 'hard-copy'))
  await gendsync(h.home)
  const m = parseManifest(readFileSync(join(root, '.dsync/data.dsync')), 'data.dsync')
  const byPath = new Map(m.entries.map(e => [e.path, e]))
  for (const n of odd) {
    const e = byPath.get(`pool/${n}`)
    assert.ok(e, n)
    assert.equal(e.type, n === 'tab\there' ? 'h' : 'f')
    assert.equal(e.size, Buffer.byteLength(`content of ${n}`))
  }
  assert.equal(byPath.get('empty')?.type, 'd')
  assert.deepEqual([byPath.get('latest')?.type, byPath.get('latest')?.target], ['l', 'pool/with space.deb'])
  // Links pointing outside are recorded as links, never followed.
  assert.deepEqual([byPath.get('escape')?.type, byPath.get('escape')?.target], ['l', '/etc/passwd'])
  assert.deepEqual([byPath.get('pool/up')?.type, byPath.get('pool/up')?.target], ['l', '../../outside'])
  // 'hard-copy' sorts before 'pool/...', so it is the file and the pool path links to it.
  assert.equal(byPath.get('hard-copy')?.type, 'f')
  assert.deepEqual([byPath.get('pool/tab\there')?.type, byPath.get('pool/tab\there')?.target], ['h', 'hard-copy'])
  assert.ok(!m.entries.some(e => e.path.startsWith('.dsync')))
  // Paths stay one line each: the raw file has exactly one line per entry plus header and END.
  const raw = readFileSync(join(root, '.dsync/data.dsync'), 'utf8')
  assert.equal(raw.split('\n').length, 6 + m.entries.length + 2)

  const v = await runCli(['verify', root])
  assert.equal(v.code, 0, v.stdout + v.stderr)
})

test('the torrent puts data.dsync first, aligns every file with BEP 47 pad files, and adds no tracker', async () => {
  const h = makeHome(tempDir(), { rocky: sampleFiles() })
  const [r] = await gendsync(h.home)
  const t = bencode.decode(readFileSync(join(h.webroot, 'rocky/.dsync/rocky.torrent')))
  assert.equal(t.announce, undefined)
  assert.equal(t['announce-list'], undefined)
  const info = t.info
  assert.equal(info['piece length'], r.pieceLength)
  assert.equal(Buffer.from(info.name).toString(), 'rocky')
  const files = info.files as { length: number; path: Uint8Array[]; attr?: Uint8Array }[]
  assert.equal(files[0].path.map(p => Buffer.from(p).toString()).join('/'), '.dsync/data.dsync')
  let offset = 0
  files.forEach((f, i) => {
    const pad = f.attr !== undefined && Buffer.from(f.attr).toString() === 'p'
    if (!pad) assert.equal(offset % r.pieceLength, 0, `file ${i} starts on a piece boundary`)
    else assert.equal(files[i - 1] && (offset % r.pieceLength) + f.length, r.pieceLength)
    offset += f.length
  })
  assert.equal(info.pieces.length / 20, Math.ceil(offset / r.pieceLength))
})

test('trackers come from xync.conf and nowhere else', async () => {
  const h = makeHome(tempDir(), { rocky: { 'a.txt': 'a' } }, 'tracker=udp://127.0.0.1:6969/announce, http://127.0.0.1:8000/announce\n')
  await gendsync(h.home)
  const t = bencode.decode(readFileSync(join(h.webroot, 'rocky/.dsync/rocky.torrent')))
  assert.equal(Buffer.from(t.announce).toString(), 'udp://127.0.0.1:6969/announce')
  assert.deepEqual(t['announce-list'].map((tier: Uint8Array[]) => Buffer.from(tier[0]).toString()),
    ['udp://127.0.0.1:6969/announce', 'http://127.0.0.1:8000/announce'])
  const magnet = (await runCli(['--home', h.home, 'magnet', 'rocky'])).stdout.trim()
  assert.match(magnet, /^magnet:\?xt=urn:btih:[0-9a-f]{40}&dn=rocky&tr=udp%3A%2F%2F127\.0\.0\.1%3A6969%2Fannounce&tr=http/)
})

test('verify lists every kind of mismatch and exits 1', async () => {
  const h = makeHome(tempDir(), { rocky: { 'a.txt': 'aaaa', 'b.txt': 'bbbb', 'c.txt': 'cccc', 'd/e.txt': 'eeee' } })
  await gendsync(h.home)
  const root = join(h.webroot, 'rocky')
  writeFileSync(join(root, 'a.txt'), 'AAAA') // same size, new content
  utimesSync(join(root, 'a.txt'), OLD_MTIME, OLD_MTIME)
  writeTree(root, { 'extra.txt': 'x' })
  const { rmSync } = await import('node:fs')
  rmSync(join(root, 'b.txt'))
  const { chmodSync } = await import('node:fs')
  chmodSync(join(root, 'c.txt'), 0o600)
  const r = await runCli(['--json', 'verify', root])
  assert.equal(r.code, 1)
  const kinds = (JSON.parse(r.stdout).mismatches as { path: string; kind: string }[]).map(m => `${m.kind}:${m.path}`).sort()
  assert.deepEqual(kinds, ['content:a.txt', 'extra:extra.txt', 'missing:b.txt', 'mode:c.txt'])
})

test('when the torrent gains or loses its last file, the incremental torrent equals a from-scratch one', async () => {
  const h = makeHome(tempDir(), { rocky: { 'a.deb': Buffer.alloc(20_000, 1), 'm.deb': Buffer.alloc(30_000, 2) } })
  const root = join(h.webroot, 'rocky')
  await gendsync(h.home)
  const scratchHash = async () => {
    const copy = makeHome(tempDir(), {})
    execFileSync('cp', ['-a', root, join(copy.webroot, 'rocky')])
    execFileSync('rm', ['-f', join(copy.webroot, 'rocky/.dsync/hashcache')])
    writeFileSync(join(copy.home, 'repos/rocky.conf'), `repo=rocky\nsave=${join(copy.webroot, 'rocky')}\ndsync=true\n`)
    return (await gendsync(copy.home))[0].infoHash
  }
  writeTree(root, { 'z-last.deb': Buffer.alloc(5_000, 3) }) // sorts last: now it ends the torrent
  const [added] = await gendsync(h.home)
  assert.equal(added.hashedFiles, 1)
  assert.equal(added.infoHash, await scratchHash())
  execFileSync('rm', [join(root, 'z-last.deb')]) // m.deb ends the torrent again, its cached tail is reused
  const [removed] = await gendsync(h.home)
  assert.equal(removed.infoHash, await scratchHash())
})

test('a file rewritten with the same size and mtime is still hashed again (ctime is part of the cache key)', async () => {
  const h = makeHome(tempDir(), { rocky: { 'Packages.gz': 'index v1', 'other.deb': 'x' } })
  const [first] = await gendsync(h.home)
  await new Promise(r => setTimeout(r, 20)) // a later ctime, whatever the clock's granularity
  writeTree(join(h.webroot, 'rocky'), { 'Packages.gz': 'index v2' }) // same size, mtime set back to OLD_MTIME
  const [second] = await gendsync(h.home)
  assert.equal(second.hashedFiles, 1)
  assert.notEqual(second.infoHash, first.infoHash)
})

test('a tree walked and hashed on worker threads: every digest in data.dsync and the hash cache is its file\'s', { timeout: 120_000 }, async () => {
  // Past the entries the main thread lists itself (5,000) and the files it hashes itself
  // (1,000): one set of threads walks, then hashes, and data.dsync and the hash cache are
  // filled in while they hash (src/publish/full-run.ts).
  const files: Record<string, Buffer> = {}
  for (let i = 0; i < 6000; i++) files[`pool/p${i % 37}/pkg${i % 211}/f${i}.deb`] = Buffer.alloc(i % 500 === 0 ? 40_000 + i : 1 + ((i * 7919) % 5000), i % 251)
  // Big files last in data.dsync order, so the last ones are still being hashed after the
  // rest are filled in: their digests must not be left out.
  for (let i = 0; i < 3; i++) files[`zz/big${i}.iso`] = Buffer.alloc((16 << 20) + i, 100 + i)
  const h = makeHome(tempDir(), { rocky: files })
  const [r] = await gendsync(h.home)
  assert.equal(r.hashedFiles, 6003)
  const dsync = join(h.webroot, 'rocky', '.dsync')
  const listed = parseManifest(readFileSync(join(dsync, 'data.dsync')), 'data.dsync').entries.filter(e => e.type === 'f')
  assert.equal(listed.length, 6003)
  for (const e of listed) assert.equal(e.sha256?.toString('hex'), referenceDigests(files[e.path], r.pieceLength).sha256.toString('hex'), e.path)
  // Hash cache lines: inode, size, mtime, ctime, SHA-256, piece hashes (base64), tail, path.
  const lines = readFileSync(join(dsync, 'hashcache'), 'utf8').trim().split('\n').slice(1)
  assert.equal(lines.length, 6003)
  for (const line of lines) {
    const f = line.split('\t')
    const want = referenceDigests(files[f[7]], r.pieceLength)
    assert.equal(f[4], want.sha256.toString('hex'), f[7])
    assert.equal(f[5], want.pieces.toString('base64'), f[7])
  }
})
