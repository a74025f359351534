import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { get } from 'node:http'
import { join } from 'node:path'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import parsePrometheus, { type ParsedFamily } from 'parse-prometheus-text-format'
import { loadGeneration } from '../src/host/generation.js'
import { renderMetrics } from '../src/host/metrics.js'
import type { HostStatus } from '../src/host/status.js'
import { HOST_PORT } from '../testbed/host.js'
import { WireLeecher } from '../testbed/leecher.js'
import { sharedTree, startSharedHost } from '../testbed/shared-hosts.js'

// Host on 127.0.14.10; 127.0.14.11 is allowed by its firewall, 127.0.14.12 is not.
const HOST = '127.0.14.10'
const ALLOWED = '127.0.14.11'
const DENIED = '127.0.14.12'

function fetchFrom(localAddress: string, path: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get({ host: HOST, port: HOST_PORT, path, localAddress, agent: false }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', c => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }))
    })
    req.on('error', reject)
  })
}

/**
 * Parses with a real Prometheus text-format parser, then checks what that parser lets
 * through: every family typed and documented (an UNTYPED family means a missing or
 * misplaced TYPE line, or a sample line broken by bad escaping), legal names, counters
 * ending in _total, numeric values.
 */
function parseStrict(text: string): Map<string, ParsedFamily> {
  const families = parsePrometheus(text)
  const out = new Map<string, ParsedFamily>()
  for (const f of families) {
    assert.match(f.name, /^[a-zA-Z_:][a-zA-Z0-9_:]*$/, `metric name ${JSON.stringify(f.name)}`)
    assert.ok(f.type === 'COUNTER' || f.type === 'GAUGE', `${f.name}: type ${f.type}`)
    assert.ok(f.help.length > 0, `${f.name}: no HELP`)
    if (f.type === 'COUNTER') assert.match(f.name, /_total$/, `counter ${f.name} must end in _total`)
    for (const m of f.metrics) assert.ok(/^(NaN|[+-]Inf|-?\d+(\.\d+)?(e[+-]?\d+)?)$/.test(m.value), `${f.name}: value ${m.value}`)
    assert.ok(!out.has(f.name), `${f.name} twice`)
    out.set(f.name, f)
  }
  return out
}

function sample(families: Map<string, ParsedFamily>, name: string, labels: Record<string, string> = {}): number {
  const f = families.get(name)
  assert.ok(f, `no ${name}`)
  const m = f.metrics.find(x => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v))
  assert.ok(m, `${name}${JSON.stringify(labels)} missing`)
  return Number(m.value)
}

test('/metrics: Prometheus text with bytes up, peers, requests, refusals, stale rejects and generation age; firewall applies', { timeout: 60_000 }, async () => {
  const tree = await sharedTree({ 'pool/a.deb': randomBytes(300_000), 'images/disk.iso': randomBytes(200_000), 'dists/InRelease': 'Suite: x\n' })
  const host = await startSharedHost(tree, HOST, '', '', { 'firewall.conf': `allow=${ALLOWED}\n` })

  const first = await fetchFrom(ALLOWED, '/metrics')
  assert.equal(first.status, 200)
  assert.match(first.type, /^text\/plain; version=0\.0\.4/)
  let m = parseStrict(first.body)
  assert.equal(sample(m, 'dsync_host_uploaded_bytes_total', { repo: 'rocky' }), 0)
  assert.equal(sample(m, 'dsync_host_peers', { repo: 'rocky' }), 0)
  const age = sample(m, 'dsync_host_generation_age_seconds', { repo: 'rocky' })
  assert.ok(age >= 0 && age < 600, `generation age ${age}`)
  assert.equal(sample(m, 'dsync_host_generation_info', { repo: 'rocky', infohash: tree.infoHash }), 1)
  assert.equal(sample(m, 'dsync_host_refused_connections_total'), 0)

  // A peer takes 4 blocks: bytes up, requests and the peer count move.
  const gen = loadGeneration('rocky', join(tree.webroot, 'rocky'))
  const user = new WireLeecher(HOST, HOST_PORT, ALLOWED, tree.infoHash)
  await user.waitUnchoked()
  for (let i = 0; i < 4; i++) await user.request(i, 0, 16384)
  m = parseStrict((await fetchFrom(ALLOWED, '/metrics')).body)
  assert.equal(sample(m, 'dsync_host_peers', { repo: 'rocky' }), 1)
  assert.equal(sample(m, 'dsync_host_block_requests_total', { repo: 'rocky' }), 4)
  assert.ok(sample(m, 'dsync_host_uploaded_bytes_total', { repo: 'rocky' }) >= 4 * 16384)
  assert.ok(sample(m, 'dsync_host_http_requests_total') >= 2)

  // A file rewritten in place after gendsync: the block is refused and counted.
  const seg = gen.segments.list().find(s => s.path === 'images/disk.iso')!
  writeFileSync(join(tree.webroot, 'rocky', 'images/disk.iso'), randomBytes(200_000))
  // The fd cache re-checks an open handle that was checked more than 250 ms ago.
  await sleep(400)
  const piece = Math.floor(seg.offset / gen.pieceLength)
  const begin = (seg.offset % gen.pieceLength) - ((seg.offset % gen.pieceLength) % 16384)
  const length = Math.min(16384, gen.totalLength - piece * gen.pieceLength - begin)
  const before = user.wire.downloaded
  await assert.rejects(user.request(piece, begin, length), /request was rejected/)
  assert.equal(user.wire.downloaded, before, 'no byte of the stale block was sent')
  user.close()
  m = parseStrict((await fetchFrom(ALLOWED, '/metrics')).body)
  assert.equal(sample(m, 'dsync_host_stale_rejects_total', { repo: 'rocky' }), 1)
  assert.equal(sample(m, 'dsync_host_stale_files', { repo: 'rocky' }), 1)

  // Not in firewall.conf: the connection is reset, no metrics; the refusal is counted.
  await assert.rejects(fetchFrom(DENIED, '/metrics'), /ECONNRESET|socket hang up/)
  m = parseStrict((await fetchFrom(ALLOWED, '/metrics')).body)
  assert.equal(sample(m, 'dsync_host_refused_connections_total'), 1)
  assert.match(host.log(), /refused 127\.0\.14\.12/)
})

test('metrics writer: label values with quotes, backslashes and newlines survive a real parser', () => {
  const hostile = 'a"b\\c\nd} 1\nevil_total 99'
  const status: HostStatus = {
    pid: 1, startedAt: '2026-01-01T00:00:00.000Z', listen: [], firewall: { restricted: false, entries: [] }, motd: '',
    refused: [], openFiles: 0, connections: 0, queuedBytes: 0, counters: { httpRequests: 3, refusedConnections: 2 }, uploadLimit: { host: 40, repos: { [hostile]: 8 } },
    repos: [{
      repo: hostile, infoHash: 'ab'.repeat(20), generation: 'cd'.repeat(32), files: 5, bytes: 10, pieces: 1, peers: 2,
      uploadRate: 7, uploaded: 1234, staleFiles: 0, requests: 9, staleRejects: 1, madeAt: 0, magnet: '',
    }],
  }
  const m = parseStrict(renderMetrics(status))
  assert.ok(!m.has('evil_total'), 'a label value must not start a sample line')
  assert.equal(sample(m, 'dsync_host_uploaded_bytes_total', { repo: hostile }), 1234)
  assert.equal(sample(m, 'dsync_host_upload_limit_bytes_per_second', { scope: 'host' }), 5_000_000)
  assert.equal(sample(m, 'dsync_host_upload_limit_bytes_per_second', { scope: 'repo', repo: hostile }), 1_000_000)
  assert.ok(Number.isNaN(sample(m, 'dsync_host_generation_age_seconds', { repo: hostile })), 'unknown age is NaN, not 0')
})
