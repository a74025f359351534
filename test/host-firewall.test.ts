import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { CLI, runCli } from '../testbed/cli.js'
import { handshakeBytes, rawExchange } from '../testbed/leecher.js'
import { assertSameTree } from '../testbed/same-tree.js'
import { pickPort } from '../testbed/seeders.js'
import { makeHome, tempDir } from '../testbed/tree.js'
import { pullCli } from '../testbed/upstream.js'

// firewall.conf for IPv6 clients (::1, v6 CIDR ranges, v4 entries that must not match v6),
// for IPv4 clients of a dual-stack (::) listener, and for the `pull --seed` host; the legacy
// spellings -service, -reload and -stop-service drive the host. Each refusal is checked with a
// raw socket from the refused address (no byte comes back) next to a positive control from an
// allowed one. Addresses ::1 and 127.0.11.x, random ports.

function tree(): Record<string, string> {
  const files: Record<string, string> = { 'dists/stable/Release': 'Suite: stable\n' }
  for (let i = 0; i < 12; i++) files[`pool/pkg${i}.deb`] = `package ${i}\n`.repeat(200 + i)
  return files
}

interface Host {
  home: string
  port: number
  save: string
  cli(...args: string[]): ReturnType<typeof runCli>
  firewall(text: string): Promise<void>
  log(): string
}

/** A published home listening on `listen`, started with the legacy -service and -reload. */
async function startHost(listen: string): Promise<Host> {
  const port = pickPort()
  const h = makeHome(tempDir(), { rocky: tree() }, `listen=${listen}\nport=${port}\n`)
  const cli = (...args: string[]) => runCli(['--home', h.home, ...args])
  const g = await cli('gendsync')
  assert.equal(g.code, 0, g.stderr)
  const started = await cli('-service')
  assert.equal(started.code, 0, started.stderr)
  after(() => cli('stop-service'))
  writeFileSync(join(h.home, 'dtp', 'list.conf'), '/rocky\n')
  const reloaded = await cli('-reload')
  assert.equal(reloaded.code, 0, reloaded.stderr)
  return {
    home: h.home, port, save: join(h.webroot, 'rocky'), cli,
    async firewall(text: string) {
      writeFileSync(join(h.home, 'dtp', 'firewall.conf'), text)
      const r = await cli('-reload')
      assert.equal(r.code, 0, r.stderr)
    },
    log: () => readFileSync(join(h.home, 'log', 'dtp.log'), 'utf8'),
  }
}

const infoHashOf = (save: string) => /btih:([0-9a-f]{40})/.exec(readFileSync(join(save, '.dsync/rocky.magnet'), 'utf8'))![1]

/** Peer wire and HTTP from `from` to `to:port`: the bytes each got back. */
async function probe(to: string, port: number, from: string, infoHash: string): Promise<{ wire: number; http: number }> {
  const wire = await rawExchange(to, port, from, handshakeBytes(infoHash), 1500)
  const http = await rawExchange(to, port, from, 'GET /status.json HTTP/1.0\r\n\r\n', 1500)
  return { wire: wire.bytes, http: http.bytes }
}

test('firewall.conf and IPv6: ::1 is let in or refused by v6 addresses and CIDR ranges, never by a v4 entry; a real pull over IPv6', { timeout: 120_000 }, async () => {
  const host = await startHost('::1')
  const ih = infoHashOf(host.save)
  const open = await probe('::1', host.port, '::1', ih)
  assert.ok(open.wire >= 68 && open.http > 0, `positive control: no allow= lets ::1 in (${JSON.stringify(open)})`)

  await host.firewall('allow=::2/127\n') // ::2 and ::3, not ::1
  assert.deepEqual(await probe('::1', host.port, '::1', ih), { wire: 0, http: 0 }, 'a v6 range without ::1 refuses it')
  assert.match(host.log(), /refused ::1\b/)

  await host.firewall('allow=127.0.0.1, 127.0.0.0/8\n')
  assert.deepEqual(await probe('::1', host.port, '::1', ih), { wire: 0, http: 0 }, 'v4 entries do not let ::1 in')

  await host.firewall('allow=::1\n')
  const exact = await probe('::1', host.port, '::1', ih)
  assert.ok(exact.wire >= 68 && exact.http > 0, `allow=::1 lets ::1 in (${JSON.stringify(exact)})`)

  await host.firewall('allow=10.0.0.0/8\nallow=::/120\n')
  const dest = join(tempDir(), 'mirror')
  const r = await pullCli(`dtp://[::1]:${host.port}/rocky`, dest, [])
  assert.equal(r.code, 0, r.stderr)
  assert.deepEqual(Object.keys(r.summary!.bytesPerHost), [`[::1]:${host.port}`])
  await assertSameTree(host.save, dest)

  const stop = await host.cli('-stop-service')
  assert.equal(stop.code, 0, stop.stderr)
  assert.equal((await rawExchange('::1', host.port, '::1', 'GET / HTTP/1.0\r\n\r\n', 1000)).error, 'ECONNREFUSED')
})

test('firewall.conf on a dual-stack (::) listener: IPv4 clients arrive as ::ffff:a.b.c.d and are matched as IPv4', { timeout: 120_000 }, async () => {
  const host = await startHost('::')
  const ih = infoHashOf(host.save)
  await host.firewall('allow=127.0.11.20, 127.0.11.32/30\n')
  const allowed = await probe('127.0.0.1', host.port, '127.0.11.20', ih)
  assert.ok(allowed.wire >= 68 && allowed.http > 0, `127.0.11.20 is let in (${JSON.stringify(allowed)})`)
  const inRange = await probe('127.0.0.1', host.port, '127.0.11.33', ih)
  assert.ok(inRange.wire >= 68, `127.0.11.33 is inside 127.0.11.32/30 (${JSON.stringify(inRange)})`)
  assert.deepEqual(await probe('127.0.0.1', host.port, '127.0.11.21', ih), { wire: 0, http: 0 })
  assert.deepEqual(await probe('::1', host.port, '::1', ih), { wire: 0, http: 0 })
  assert.match(host.log(), /refused (::ffff:)?127\.0\.11\.21\b/)
})

test('pull --seed --seed-allow: the seeding mirror serves only the allowed addresses; a bad entry fails before the sync', { timeout: 120_000 }, async () => {
  const host = await startHost('127.0.11.40')
  const source = `dtp://127.0.11.40:${host.port}/rocky`
  const base = tempDir()

  const bad = await runCli(['pull', '--seed', '--seed-allow', '127.0.11.999', source, join(base, 'never')])
  assert.equal(bad.code, 2, bad.stderr)
  assert.match(bad.stderr, /--seed-allow: not an address or CIDR range: "127\.0\.11\.999"/)
  assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr)
  assert.ok(!existsSync(join(base, 'never')), 'nothing synced')

  const seedPort = pickPort()
  const first = join(base, 'first')
  const seeder = spawn(process.execPath, [CLI, 'pull', '--seed', '--seed-listen', '127.0.11.41', '--seed-port', String(seedPort),
    '--seed-allow', '127.0.11.42', '--seed-allow', '127.0.11.44/30', source, first], { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  seeder.stderr.on('data', d => (err += d))
  const exited = new Promise<number | null>(resolve => seeder.on('close', code => resolve(code)))
  after(() => seeder.kill('SIGKILL'))
  const end = Date.now() + 60_000
  while (!/seeding .* as a DTP host/.test(err)) {
    assert.ok(Date.now() < end && seeder.exitCode === null, `the seeding pull did not come up: ${err}`)
    await new Promise(r => setTimeout(r, 100))
  }
  const ih = infoHashOf(first)
  const refused = await probe('127.0.11.41', seedPort, '127.0.11.43', ih)
  assert.deepEqual(refused, { wire: 0, http: 0 }, 'an address not allowed gets no byte')
  const inRange = await probe('127.0.11.41', seedPort, '127.0.11.45', ih)
  assert.ok(inRange.wire >= 68 && inRange.http > 0, `positive control: 127.0.11.45 is inside 127.0.11.44/30 (${JSON.stringify(inRange)})`)

  const second = join(base, 'second')
  const r = await pullCli(`magnet:?xt=urn:btih:${ih}`, second, [`127.0.11.41:${seedPort}`], ['--bind', '127.0.11.42'])
  assert.equal(r.code, 0, r.stderr)
  assert.deepEqual(Object.keys(r.summary!.bytesPerHost), [`127.0.11.41:${seedPort}`])
  await assertSameTree(host.save, second)
  seeder.kill('SIGINT')
  assert.equal(await exited, 0)
})
