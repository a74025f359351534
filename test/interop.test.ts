import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import WebTorrent from 'webtorrent'
import { runCli } from '../testbed/cli.js'
import { makeHome, tempDir } from '../testbed/tree.js'

const SEED_SCRIPT = fileURLToPath(new URL('../../testbed/libtorrent_seed.py', import.meta.url))
const hasLibtorrent = spawnSync('/usr/bin/python3', ['-c', 'import libtorrent'], { stdio: 'ignore' }).status === 0

function repoFiles(): Record<string, Buffer> {
  const files: Record<string, Buffer> = {}
  // Sizes straddle the piece length so the layout needs pad files between most files.
  for (let i = 0; i < 12; i++) files[`pool/f${i}.deb`] = Buffer.alloc(5000 + i * 9000, i + 1)
  files['dists/InRelease'] = Buffer.from('signed index\n')
  return files
}

async function generate(): Promise<{ save: string; webroot: string; torrent: Buffer; infoHash: string }> {
  const h = makeHome(tempDir(), { rocky: repoFiles() })
  const r = await runCli(['--home', h.home, '--json', 'gendsync'])
  assert.equal(r.code, 0, r.stderr)
  const save = join(h.webroot, 'rocky')
  return { save, webroot: h.webroot, torrent: readFileSync(join(save, '.dsync/rocky.torrent')), infoHash: JSON.parse(r.stdout).infoHash }
}

function quietClient(): WebTorrent.Instance {
  return new WebTorrent({ dht: false, lsd: false, natUpnp: false, natPmp: false, utp: false, tracker: false, webSeeds: false } as WebTorrent.Options)
}

test('webtorrent 3 runs on this Node and reads our torrent: same infohash and file list', { timeout: 60_000 }, async () => {
  const g = await generate()
  const client = quietClient()
  try {
    const t = await new Promise<WebTorrent.Torrent>((resolve, reject) => {
      client.on('error', reject)
      client.add(g.torrent, { path: tempDir(), deselect: true } as WebTorrent.TorrentOptions, resolve)
    })
    assert.equal(t.infoHash, g.infoHash)
    const names = t.files.map(f => f.path.split('/').slice(1).join('/'))
    // Every file of the tree, in data.dsync's (byte) order after data.dsync itself, with its length.
    const listed = t.files.map((f, i) => [names[i], f.length] as const).filter(([n]) => !n.startsWith('.pad/'))
    const tree = Object.entries(repoFiles()).sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    assert.deepEqual(listed.slice(1), tree.map(([n, d]) => [n, d.length]))
    assert.equal(listed[0][0], '.dsync/data.dsync')
    assert.ok(names.some(n => n.startsWith('.pad/')), 'pad files are listed')
  } finally {
    await new Promise<void>(r => client.destroy(() => r()))
  }
})

test('libtorrent hash-checks our padded torrent against the tree and seeds it to webtorrent', { timeout: 120_000 }, async t => {
  if (!hasLibtorrent) return t.skip('python3-libtorrent is not installed (apt-get install python3-libtorrent)')
  const g = await generate()
  const port = 20000 + Math.floor(Math.random() * 20000)
  const seeder = spawn('/usr/bin/python3', [SEED_SCRIPT, join(g.save, '.dsync/rocky.torrent'), g.webroot, '127.0.0.2', String(port)], { stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  seeder.stdout.on('data', d => (out += d))
  seeder.stderr.on('data', d => (out += d))
  const client = quietClient()
  try {
    await waitFor(() => out.includes('checked'), 60_000, () => out)
    // libtorrent verified every piece hash we computed, pad layout included.
    assert.match(out, /checked 1\.000000 \d+/, out)
    await waitFor(() => out.includes('seeding'), 10_000, () => out)
    const dest = tempDir()
    const torrent = await new Promise<WebTorrent.Torrent>((resolve, reject) => {
      client.on('error', reject)
      const tor = client.add(g.torrent, { path: dest } as WebTorrent.TorrentOptions)
      tor.on('ready', () => tor.addPeer(`127.0.0.2:${port}`))
      tor.on('done', () => resolve(tor))
    })
    for (const [rel, content] of Object.entries(repoFiles())) {
      assert.ok(readFileSync(join(dest, 'rocky', rel)).equals(content), rel)
    }
    assert.ok(torrent.downloaded > 0)
  } finally {
    await new Promise<void>(r => client.destroy(() => r()))
    seeder.stdin.end()
    seeder.kill()
  }
})

async function waitFor(cond: () => boolean, ms: number, describe: () => string): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out; output so far: ${describe()}`)
    await new Promise(r => setTimeout(r, 50))
  }
}
