import assert from 'node:assert/strict'
import { createHash, generateKeyPairSync } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { parseDelta, serializeDelta } from '../src/generation/delta.js'
import { publicHexOf } from '../src/generation/keys.js'
import { parseRecord, signBep44, signRecord } from '../src/generation/record.js'
import { runCli } from '../testbed/cli.js'
import { HOST_PORT, prepareHost, startHost } from '../testbed/host.js'
import { tempDir, writeTree } from '../testbed/tree.js'

/**
 * A client with a pinned key refuses, each with one line, exit 4 and nothing written: a record
 * signed by another key, a rollback to an older generation, a delta or torrent that is not the
 * one the record names, a record with a broken signature. Real hosts on 127.0.3.7x; the
 * tampering ones are a small HTTP server serving the real host's files with one thing altered.
 */
const A = '127.0.3.71'
const B = '127.0.3.72'
const EVIL = '127.0.3.73'

function files(tag: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i < 12; i++) out[`pool/p${i % 3}/pkg${i}.deb`] = `${tag === '0' || i > 3 ? '' : tag} package ${i} `.repeat(400 + i)
  out['dists/stable/Release'] = `Release ${tag}\n`
  return out
}

/** Every path under DEST with type, size, mtime and content hash: "nothing written" means equal. */
function snapshot(root: string): string {
  if (!existsSync(root)) return 'absent'
  const out: string[] = []
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      const abs = join(dir, name)
      const st = lstatSync(abs)
      const sum = st.isFile() ? createHash('sha256').update(readFileSync(abs)).digest('hex') : ''
      out.push(`${rel}${name} ${st.mode} ${st.size} ${st.mtimeMs} ${sum}`)
      if (st.isDirectory()) walk(abs, `${rel}${name}/`)
    }
  }
  walk(root, '')
  return out.join('\n')
}

/** cp -a: modes and mtimes kept, as a mirror's copy of a tree keeps them. */
function copyTree(from: string, to: string): void {
  execFileSync('cp', ['-a', from, to])
}

async function pull(source: string, dest: string, ...extra: string[]) {
  return runCli(['pull', source, dest, ...extra])
}

/** Serves `routes` (path -> body) and nothing else: a host that lies about one file. */
async function evilHost(routes: Map<string, Buffer>): Promise<string> {
  const server: Server = createServer((req, res) => {
    const body = routes.get(req.url ?? '')
    res.statusCode = body ? 200 : 404
    res.end(body ?? 'not found\n')
  })
  await new Promise<void>(resolve => server.listen(0, EVIL, resolve))
  after(() => server.close())
  return `dtp://${EVIL}:${(server.address() as AddressInfo).port}/deb`
}

async function refused(r: { code: number; stderr: string }, pattern: RegExp, dest: string, before: string): Promise<void> {
  assert.equal(r.code, 4, r.stderr)
  const lines = r.stderr.trim().split('\n')
  assert.equal(lines.length, 1, r.stderr)
  assert.match(lines[0], pattern)
  assert.equal(snapshot(dest), before, 'nothing written')
}

test('a pinned key refuses wrong signers, rollbacks and tampered deltas, torrents and records', async () => {
  const host = await prepareHost(A, { deb: files('0') })
  const repoDir = join(host.webroot, 'deb')
  await startHost(host, ['deb'])
  const key = (await host.cli('key')).stdout.trim()
  const dir = tempDir('dsync-trust-')
  const src = `dtp://${A}:${HOST_PORT}/deb`
  const base = `http://${A}:${HOST_PORT}/deb`
  const gen0 = join(dir, 'gen0-tree')
  copyTree(repoDir, gen0)
  const gen0Info = readFileSync(join(repoDir, '.dsync', 'deb.torrent'))

  // Without a key: works, and says the origin is unverified.
  const client = join(dir, 'client')
  const open = await pull(src, client)
  assert.equal(open.code, 0, open.stderr)
  assert.match(open.stderr, /origin unverified/)
  const atGen0 = join(dir, 'client-at-gen0')
  copyTree(client, atGen0)

  // Wrong key: refused before anything is fetched or written (DEST is not even created).
  const otherKey = 'ab'.repeat(32)
  const fresh = join(dir, 'fresh')
  await refused(await pull(src, fresh, '--key', otherKey), /signed by [0-9a-f]{64}, expected abab/, fresh, 'absent')

  // Generation 1; the client applies it with the key.
  writeTree(repoDir, files('1'))
  assert.equal((await host.cli('gendsync')).code, 0)
  assert.equal((await host.cli('reload')).code, 0)
  const ok = await pull(src, client, '--key', key)
  assert.equal(ok.code, 0, ok.stderr)
  assert.match(ok.stdout + ok.stderr, /./)
  const record1 = parseRecord(readFileSync(join(repoDir, '.dsync', 'generation')))

  // Rollback: host B re-serves the generation-0 tree with its (upstream's) record, unchanged.
  const hostB = await prepareHost(B, {})
  const bDir = join(hostB.webroot, 'deb')
  copyTree(gen0, bDir)
  writeFileSync(join(hostB.home, 'repos', 'deb.conf'), `repo=deb\nsave=${bDir}\ndsync=true\n`)
  assert.equal((await hostB.cli('gendsync')).code, 0)
  assert.ok(readFileSync(join(bDir, '.dsync', 'generation')).equals(readFileSync(join(gen0, '.dsync', 'generation'))), 'a pulled tree keeps its upstream record')
  await startHost(hostB, ['deb'])
  let before = snapshot(client)
  await refused(await pull(`dtp://${B}:${HOST_PORT}/deb`, client, '--key', key), /older than generation .* \(rollback refused\)/, client, before)

  // Hostile hosts: the real files with one altered.
  const real = async (path: string) => Buffer.from(await (await fetch(`${base}${path}`)).arrayBuffer())
  const routes = new Map<string, Buffer>([
    ['/deb/', await real('/')], ['/deb/generation', record1.bytes],
    [`/deb/deltas/${record1.deltas[0].seq}.delta`, await real(`/deltas/${record1.deltas[0].seq}.delta`)],
    [`/deb/deltas/${record1.deltas[0].seq}.torrent`, await real(`/deltas/${record1.deltas[0].seq}.torrent`)],
    ['/deb/deb.torrent', await real('/deb.torrent')],
  ])
  // A well-formed delta (its own END checksum right) that is not the one the record names:
  // its last change dropped. Only the record's hash of the delta tells it apart up front.
  const real1 = parseDelta(routes.get(`/deb/deltas/${record1.deltas[0].seq}.delta`)!)
  const delta = serializeDelta({ ...real1, upserts: real1.upserts - 1 }, real1.lines.slice(0, -1))
  const evilDelta = await evilHost(new Map([...routes, [`/deb/deltas/${record1.deltas[0].seq}.delta`, delta]]))
  before = snapshot(atGen0)
  await refused(await pull(evilDelta, atGen0, '--key', key), /delta \d+ does not match the signed generation record/, atGen0, before)

  // The right record with the previous generation's torrent (and the info naming it).
  const info = JSON.parse(routes.get('/deb/')!.toString()) as Record<string, unknown>
  const oldInfo = Buffer.from(JSON.stringify({ ...info, infoHash: parseRecord(readFileSync(join(gen0, '.dsync', 'generation'))).torrent }))
  const evilTorrent = await evilHost(new Map([...routes, ['/deb/', oldInfo], ['/deb/deb.torrent', gen0Info]]))
  await refused(await pull(evilTorrent, fresh, '--key', key), /torrent does not match the signed generation record/, fresh, 'absent')
  // The info naming the right torrent, the body being another generation's.
  const evilBody = await evilHost(new Map([...routes, ['/deb/deb.torrent', gen0Info]]))
  await refused(await pull(evilBody, fresh, '--key', key), /infohash [0-9a-f]{40}, expected/, fresh, 'absent')

  // A record with one byte changed (its sequence number raised).
  const forged = Buffer.from(record1.bytes.toString().replace(`seq ${record1.seq}`, `seq ${record1.seq + 1}`))
  const evilRecord = await evilHost(new Map([...routes, ['/deb/generation', forged]]))
  await refused(await pull(evilRecord, fresh, '--key', key), /generation record refused: bad signature/, fresh, 'absent')
  // Unpinned, a host signing its own record that names the real delta but another result: the
  // list rebuilt from the delta is refused, and a dry run leaves no temporary folder behind.
  const evil = generateKeyPairSync('ed25519')
  const fake = 'f'.repeat(64)
  const wrongResult = signRecord({
    ...record1, key: publicHexOf(evil.publicKey), manifest: { ...record1.manifest, sha256: fake },
    deltas: [{ ...record1.deltas[0], to: fake }], dht: signBep44(record1.repo, record1.seq, record1.torrent, evil.privateKey),
  }, evil.privateKey)
  const evilResult = await evilHost(new Map([...routes, ['/deb/generation', wrongResult]]))
  const tmp = tempDir('dsync-trust-tmp-')
  before = snapshot(atGen0)
  const dry = await runCli(['pull', evilResult, atGen0, '--dry-run'], { env: { TMPDIR: tmp } })
  assert.equal(dry.code, 4, dry.stderr)
  assert.match(dry.stderr, /data\.dsync rebuilt from the deltas/)
  assert.equal(snapshot(atGen0), before, 'nothing written')
  assert.deepEqual(readdirSync(tmp), [], 'no temporary folder left in TMPDIR')

  mkdirSync(fresh)
  assert.equal((await pull(src, fresh, '--key', key)).code, 0, 'the real host, for contrast')
})
