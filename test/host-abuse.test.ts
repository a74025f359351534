import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { linkSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { createSocket } from 'node:dgram'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { test } from 'node:test'
import bencode from 'bencode'
import { loadGeneration } from '../src/host/generation.js'
import { readPid } from '../src/util/process.js'
import { HOST_PORT, prepareHost, startHost } from '../testbed/host.js'
import { handshakeBytes, wireMessage, WireLeecher } from '../testbed/leecher.js'
import { OLD_MTIME } from '../testbed/tree.js'

/**
 * A DTP host against hostile peers (issue 10): each subtest is one attack from the issue,
 * run against a real service process with short timeouts from xync.conf.
 */
const H = '127.0.3.70'
const HEADER_TIMEOUT_S = 2
const IDLE_TIMEOUT_S = 3
const PER_ADDRESS = 6

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) * 1024 : 0
}

/** Opens a TCP connection from `from`; resolves once connected. */
function open(from: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: H, port: HOST_PORT, localAddress: from })
    s.once('connect', () => resolve(s))
    s.once('error', reject)
  })
}

/**
 * True if the host closes `s` within `ms` (the socket is ours to destroy otherwise). What
 * arrives is read and dropped: a socket that reads nothing never sees the close.
 */
function closedWithin(s: Socket, ms: number): Promise<boolean> {
  return new Promise(resolve => {
    if (s.destroyed) return resolve(true)
    s.resume()
    const timer = setTimeout(() => resolve(false), ms)
    s.on('error', () => undefined)
    s.once('close', () => {
      clearTimeout(timer)
      resolve(true)
    })
  })
}

const request = (piece: number, offset: number, length: number): Buffer => wireMessage(6, piece, offset, length)

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms))

test('a DTP host holds against hostile peers', async t => {
  const victims = ['pool/a/one.bin', 'pool/b/two.bin', 'pool/c/three.bin']
  const files: Record<string, Buffer | string> = { 'pool/big.bin': randomBytes(4 << 20), 'dists/Release': 'Origin: x\n' }
  for (const v of victims) files[v] = randomBytes(20_000)
  const host = await prepareHost(H, { debian: files },
    `header-timeout=${HEADER_TIMEOUT_S}\nidle-timeout=${IDLE_TIMEOUT_S}\nmax-conn-per-address=${PER_ADDRESS}\n`)
  await startHost(host, ['debian'])
  const infoHash = host.genInfo.debian.infoHash
  // The pid file is "pid start-time" (src/util/process.ts).
  const pid = readPid(join(host.home, 'run', 'dtp.pid'))!
  const url = `http://${H}:${HOST_PORT}`

  await t.test('a file swapped after gendsync for a symlink, a hardlink or a linked parent is not served', async () => {
    const save = join(host.webroot, 'debian')
    const gen = loadGeneration('debian', save)
    const outside = join(host.base, 'outside')
    mkdirSync(outside, { recursive: true })
    const secret = Buffer.alloc(20_000, 'SECRET ')
    // Every swap keeps the size and mtime data.dsync records.
    const plant = (file: string) => {
      writeFileSync(file, secret)
      utimesSync(file, OLD_MTIME, OLD_MTIME)
    }
    plant(join(outside, 'one.bin'))
    rmSync(join(save, victims[0]))
    symlinkSync(join(outside, 'one.bin'), join(save, victims[0]))
    // The folder moves out whole (same inode, same bytes) and a link takes its place: the
    // repository's path now leads outside it.
    renameSync(join(save, 'pool/b'), join(outside, 'b'))
    symlinkSync(join(outside, 'b'), join(save, 'pool/b'))
    plant(join(outside, 'three.bin'))
    rmSync(join(save, victims[2]))
    linkSync(join(outside, 'three.bin'), join(save, victims[2]))

    const leecher = new WireLeecher(H, HOST_PORT, '127.0.3.75', infoHash)
    await leecher.waitUnchoked()
    const served: string[] = []
    try {
      for (const v of victims) {
        const seg = gen.segments.list().find(s => s.path === v)!
        const piece = Math.floor(seg.offset / gen.pieceLength)
        const offset = seg.offset % gen.pieceLength
        const length = Math.min(1024, gen.pieceLength - offset)
        // A reject (BEP 6) is the right answer; any bytes are the planted file's.
        if (await leecher.request(piece, offset, length).then(() => true, () => false)) served.push(v)
      }
    } finally {
      leecher.close()
    }
    assert.deepEqual(served, [], 'bytes served through a swapped file')
    assert.match(host.log(), /one\.bin.*symbolic link/)
    assert.match(host.log(), /two\.bin.*symbolic link/)
    assert.match(host.log(), /three\.bin.*inode/)
  })

  await t.test('a malformed URL is a 400, not a 500', async () => {
    assert.equal((await fetch(`${url}/%ZZ`)).status, 400)
    assert.equal((await fetch(`${url}/debian/%E0%A4%A`)).status, 400)
  })

  await t.test('a message longer than the protocol needs closes the connection', async () => {
    const huge = await open('127.0.3.71')
    huge.write(Buffer.concat([handshakeBytes(infoHash), Buffer.from([0x7f, 0xff, 0xff, 0xff, 7]), randomBytes(64 << 10)]))
    assert.ok(await closedWithin(huge, 5000), 'a 2 GB length prefix was not refused')
    // An extended message (BEP 10) of 1 MiB: far above any extension handshake.
    const ext = await open('127.0.3.77')
    const len = Buffer.alloc(6)
    len.writeUInt32BE((1 << 20) + 2, 0)
    len[4] = 20
    ext.write(Buffer.concat([handshakeBytes(infoHash), len, randomBytes(128 << 10)]))
    assert.ok(await closedWithin(ext, 5000), 'a 1 MiB extended message was not refused')
    // Refused by the limit, not by the header timeout (a message once started must end within it).
    assert.match(host.log(), /message of 2147483647 bytes \(type 7\) exceeds 16393/)
    assert.match(host.log(), /message of 1048578 bytes \(type 20\) exceeds 65536/)
    // The length prefix and the id byte in different chunks: the limit waits for the id. Cut after
    // the prefix, and cut inside it with the prefix's end a chunk of its own.
    for (const [from, cuts] of [['127.0.3.79', [4]], ['127.0.3.83', [2, 4]]] as const) {
      const length = (1 << 20) + 3 + cuts.length // a line of its own in the log
      const message = Buffer.concat([Buffer.alloc(5), randomBytes(1024)])
      message.writeUInt32BE(length, 0)
      message[4] = 20
      const s = await open(from)
      s.setNoDelay(true)
      let at = 0
      for (const cut of cuts) {
        s.write(Buffer.concat([at === 0 ? handshakeBytes(infoHash) : Buffer.alloc(0), message.subarray(at, cut)]))
        at = cut
        await sleep(200)
      }
      s.write(message.subarray(at))
      assert.ok(await closedWithin(s, 1000), `an extended message of ${length} bytes cut at ${cuts} was not refused`)
      assert.match(host.log(), new RegExp(`message of ${length} bytes \\(type 20\\) exceeds 65536`))
    }
    // The address that broke the rules is kept out a while; a well-behaved leecher elsewhere is served.
    const again = await open('127.0.3.71').catch(() => undefined)
    assert.ok(!again || await closedWithin(again, 2000), 'an address dropped a moment ago was let in again')
    const good = new WireLeecher(H, HOST_PORT, '127.0.3.76', infoHash)
    await good.waitUnchoked()
    assert.equal((await good.request(0, 0, 16384)).length, 16384)
    good.close()
  })

  await t.test('an opening that is not plain BitTorrent is closed, and the same address is served in plain text', async () => {
    // libtorrent's encrypted opening (MSE) is random bytes: one time in 256 the first is 0x13,
    // the peer wire's first byte. Here the bytes after the 68 a handshake takes claim a 2 GB
    // message, so a host that only counts the handshake's bytes reads them as an attack.
    const opening = Buffer.concat([Buffer.from([0x13]), randomBytes(67), Buffer.from([0x7f, 0xff, 0xff, 0xff, 7]), randomBytes(600)])
    opening.write('X', 1) // never "BitTorrent protocol", whatever the random bytes are
    const mse = await open('127.0.3.78')
    mse.write(opening)
    assert.ok(await closedWithin(mse, 5000), 'an opening that is not BitTorrent was not closed')
    // libtorrent's plain-text retry from the same address.
    const plain = new WireLeecher(H, HOST_PORT, '127.0.3.78', infoHash)
    try {
      await plain.waitUnchoked()
      assert.equal((await plain.request(0, 0, 16384)).length, 16384)
    } finally {
      plain.close()
    }
  })

  await t.test('a peer that requests without reading does not grow host memory, and is dropped', async t => {
    const before = rssOf(pid)
    const s = await open('127.0.3.72')
    s.on('error', () => undefined)
    s.pause() // never read what the host sends
    s.write(handshakeBytes(infoHash))
    let peak = before
    // The attack: 100 requests of 16 KiB (a whole piece here) every 20 ms; 150 rounds
    // ask for 234 MiB, few enough at a time to stay under the limit of requests in flight.
    for (let round = 0; round < 150 && !s.destroyed; round++) {
      const batch: Buffer[] = []
      for (let i = 0; i < 100; i++) batch.push(request((round * 100 + i) % 256, 0, 16384))
      s.write(Buffer.concat(batch))
      await sleep(20)
      if (round % 10 === 0) peak = Math.max(peak, rssOf(pid))
    }
    for (let i = 0; i < 10; i++, await sleep(100)) peak = Math.max(peak, rssOf(pid))
    const grew = (peak - before) / (1 << 20)
    t.diagnostic(`host RSS ${(before / 2 ** 20).toFixed(0)} -> peak ${(peak / 2 ** 20).toFixed(0)} MiB`)
    assert.ok(grew < 64, `host RSS grew by ${grew.toFixed(0)} MiB for one peer that reads nothing`)
    // Only now does it read (and drop) what came: the host must have given up on it.
    assert.ok(await closedWithin(s, 20_000), 'the peer that never reads was not dropped')
    const status = await (await fetch(`${url}/status.json`)).json() as { repos: { peers: number }[]; queuedBytes: number }
    assert.equal(status.repos[0].peers, 0)
    assert.equal(status.queuedBytes, 0, 'bytes still counted for a peer that left')
  })

  await t.test('slow or silent connections are closed: HTTP head, handshake, idle peer', async () => {
    const slowHttp = await open('127.0.3.73')
    slowHttp.write('GET /status.json HTTP/1.1\r\nHost: x\r\n')
    // One header byte every half second keeps any idle timer from firing.
    const trickle = setInterval(() => slowHttp.writable && slowHttp.write('X'), 500)
    const slowHandshake = await open('127.0.3.73')
    slowHandshake.write(handshakeBytes(infoHash).subarray(0, 30))
    const silentPeer = await open('127.0.3.73')
    silentPeer.write(handshakeBytes(infoHash))
    const silentFirst = await open('127.0.3.73')
    try {
      const closed = await Promise.all([slowHttp, slowHandshake, silentPeer, silentFirst].map(s => closedWithin(s, 12_000)))
      assert.deepEqual(closed, [true, true, true, true], 'slow HTTP head, slow handshake, silent peer, silent connection')
    } finally {
      clearInterval(trickle)
      for (const s of [slowHttp, slowHandshake, silentPeer, silentFirst]) s.destroy()
    }
  })

  await t.test('one address cannot hold more than its share of connections', async () => {
    const sockets = await Promise.all(Array.from({ length: 20 }, () => open('127.0.3.74').catch(() => undefined)))
    const live = sockets.filter((s): s is Socket => s !== undefined)
    const closed = await Promise.all(live.map(s => closedWithin(s, 1000)))
    const open_ = closed.filter(c => !c).length
    assert.ok(open_ <= PER_ADDRESS, `${open_} connections from one address stayed open (cap ${PER_ADDRESS})`)
    // Another address is still served meanwhile.
    assert.equal((await fetch(`${url}/status.json`)).status, 200)
    for (const s of live) s.destroy()
  })
})

/** Sends a KRPC ping (BEP 5) from `from` to the host's UDP port; the reply's bytes, or undefined after `ms`. */
function dhtPing(host: string, from: string, ms: number): Promise<Buffer | undefined> {
  return new Promise(resolve => {
    const sock = createSocket('udp4')
    const timer = setTimeout(() => {
      sock.close()
      resolve(undefined)
    }, ms)
    sock.on('message', msg => {
      clearTimeout(timer)
      sock.close()
      resolve(msg)
    })
    sock.bind(0, from, () => sock.send(bencode.encode({ t: 'pg', y: 'q', q: 'ping', a: { id: randomBytes(20) } }), HOST_PORT, host))
  })
}

test('the DHT socket of a host obeys firewall.conf', async () => {
  const D = '127.0.3.80'
  const ALLOWED = '127.0.3.81'
  const DENIED = '127.0.3.82'
  // dht-bootstrap= with no node: a DHT of its own on loopback, never the public one.
  const host = await prepareHost(D, { debian: { 'dists/Release': 'Origin: x\n' } }, 'dht=true\ndht-bootstrap=\n')
  await startHost(host, ['debian'])
  writeFileSync(join(host.home, 'dtp', 'firewall.conf'), `allow=${ALLOWED}\n`)
  const r = await host.cli('reload')
  assert.equal(r.code, 0, r.stderr)
  const answered = await dhtPing(D, ALLOWED, 3000)
  assert.ok(answered, 'no DHT reply to an allowed address: the DHT is not running')
  assert.equal(Buffer.from((bencode.decode(answered) as { y: Uint8Array }).y).toString(), 'r')
  assert.equal(await dhtPing(D, DENIED, 1500), undefined, 'a denied address got a DHT reply')
})
