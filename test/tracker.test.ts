import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { after, before, describe, test } from 'node:test'
import bencode from 'bencode'
import Client from 'bittorrent-tracker'
import { runCli } from '../testbed/cli.js'
import {
  announcePacket, announceQuery, compactPeers, connectPacket, httpGet, parseAnnounceReply, PROTOCOL_ID, scrapePacket,
  startTrackerProcess, udpConnect, udpRequest, udpSocket, escapeBytes, wsOpen, wsRequest, type TrackerProcess,
} from '../testbed/tracker-wire.js'

const HOST = '127.0.0.2'
const hashOf = (text: string): string => Buffer.from(text.padEnd(20, '-').slice(0, 20)).toString('hex')

/** Announces with bittorrent-tracker's own client and resolves with the reply and the peers it learnt. */
function clientAnnounce(url: string, infoHash: string, peerId: string, port: number): Promise<{ complete: number; incomplete: number; peers: string[]; client: Client }> {
  return new Promise((resolve, reject) => {
    const client = new Client({ infoHash, peerId: Buffer.from(peerId.padEnd(20, 'x')).toString('hex'), announce: [url], port })
    const peers: string[] = []
    client.on('peer', p => peers.push(String(p)))
    client.on('error', reject)
    client.on('warning', reject)
    client.once('update', d => setTimeout(() => resolve({ complete: d.complete, incomplete: d.incomplete, peers, client }), 100))
    client.start({ left: 1000 })
  })
}

function clientScrape(client: Client): Promise<{ complete: number; incomplete: number }> {
  return new Promise((resolve, reject) => {
    client.once('scrape', d => resolve(d))
    client.once('warning', reject)
    client.scrape()
  })
}



const binary = (hex: string): string => Buffer.from(hex, 'hex').toString('latin1')

describe('dsync tracker (public)', () => {
  let tr: TrackerProcess
  before(async () => {
    tr = await startTrackerProcess(HOST, ['--interval', '120', '--rate-limit', '0'])
  })
  after(async () => { await tr.stop() })

  test('HTTP announce returns peers, interval and min interval; scrape counts them', async () => {
    const url = `http://${HOST}:${tr.port}/announce`
    const infoHash = hashOf('http-swarm')
    const a = await clientAnnounce(url, infoHash, 'peer-a', 7001)
    const b = await clientAnnounce(url, infoHash, 'peer-b', 7002)
    assert.deepEqual(b.peers, ['127.0.0.1:7001'])
    assert.equal(b.incomplete, 2)
    const s = await clientScrape(b.client)
    assert.equal(s.incomplete, 2)
    a.client.destroy()
    b.client.destroy()

    const raw = await httpGet(`${url}?${announceQuery(infoHash, 7003)}`)
    const reply = bencode.decode(raw.body)
    assert.equal(reply.interval, 120)
    assert.equal(reply['min interval'], 60)
    assert.ok(compactPeers(reply.peers).length >= 1)
  })

  test('UDP announce (with a real connect) returns peers; scrape counts them', async () => {
    const url = `udp://${HOST}:${tr.port}`
    const infoHash = hashOf('udp-swarm')
    const a = await clientAnnounce(url, infoHash, 'peer-c', 7101)
    const b = await clientAnnounce(url, infoHash, 'peer-d', 7102)
    assert.deepEqual(b.peers, ['127.0.0.1:7101'])
    const s = await clientScrape(b.client)
    assert.equal(s.incomplete, 2)
    a.client.destroy()
    b.client.destroy()
  })

  test('HTTP and UDP peers share one swarm', async () => {
    const infoHash = hashOf('mixed-swarm')
    const a = await clientAnnounce(`http://${HOST}:${tr.port}/announce`, infoHash, 'peer-e', 7201)
    const b = await clientAnnounce(`udp://${HOST}:${tr.port}`, infoHash, 'peer-f', 7202)
    assert.deepEqual(b.peers, ['127.0.0.1:7201'])
    a.client.destroy()
    b.client.destroy()
  })

  test('WebSocket announce and scrape', async () => {
    const ws = await wsOpen(`ws://${HOST}:${tr.port}`)
    const infoHash = hashOf('ws-swarm')
    const reply = await wsRequest(ws, {
      action: 'announce', info_hash: binary(infoHash), peer_id: '-WW0001-000000000001', event: 'started', left: 10, offers: [],
    })
    assert.equal(reply['failure reason'], undefined, JSON.stringify(reply))
    assert.equal(reply.incomplete, 1)
    // Stock gives WebSocket peers a fifth of the interval (24 s here); `min interval` (60 s
    // from --interval 120) must not ask them to wait longer than that.
    assert.ok(typeof reply.interval === 'number' && reply.interval > 0, JSON.stringify(reply))
    assert.ok((reply['min interval'] as number) <= (reply.interval as number), `min interval ${reply['min interval']} > interval ${reply.interval}`)
    const s = await wsRequest(ws, { action: 'scrape', info_hash: binary(infoHash) })
    const files = s.files as Record<string, { incomplete: number }>
    assert.equal(files[binary(infoHash)].incomplete, 1)
    ws.close()
  })

  test('a UDP announce without a valid connection id is dropped and changes nothing', async () => {
    const s = await udpSocket('127.0.0.1')
    const infoHash = hashOf('spoof-target')
    // The BEP 15 magic constant as id (stock bittorrent-tracker accepts this) and a made-up one.
    for (const id of [PROTOCOL_ID, Buffer.from('0123456789abcdef', 'hex')]) {
      const reply = await udpRequest(s, HOST, tr.port, announcePacket({ connectionId: id, infoHash, port: 6881 }), 800)
      assert.equal(reply, null, 'no reply to an unconnected announce')
    }
    const id = await udpConnect(s, HOST, tr.port)
    const scrape = await udpRequest(s, HOST, tr.port, scrapePacket(id, [infoHash]))
    assert.ok(scrape)
    assert.equal(scrape.readUInt32BE(8) + scrape.readUInt32BE(16), 0, 'the dropped announces added no peer')
    // An id issued to another source port is not valid from this one either.
    const other = await udpSocket('127.0.0.1')
    const reply = await udpRequest(other, HOST, tr.port, announcePacket({ connectionId: id, infoHash, port: 6881 }), 800)
    assert.equal(reply, null)
  })

  test('the UDP announce ip field and X-Forwarded-For are ignored without a configured proxy', async () => {
    const infoHash = hashOf('ip-claims')
    const s = await udpSocket('127.0.0.1')
    const id = await udpConnect(s, HOST, tr.port)
    const first = await udpRequest(s, HOST, tr.port, announcePacket({ connectionId: id, infoHash, port: 6001, ip: '10.9.8.7' }))
    assert.ok(first)
    await httpGet(`http://${HOST}:${tr.port}/announce?${announceQuery(infoHash, 6002)}`, undefined, { 'X-Forwarded-For': '6.6.6.6' })
    const s2 = await udpSocket('127.0.0.1')
    const id2 = await udpConnect(s2, HOST, tr.port)
    const reply = parseAnnounceReply((await udpRequest(s2, HOST, tr.port, announcePacket({ connectionId: id2, infoHash, port: 6003 })))!)
    assert.deepEqual(reply.peers.sort(), ['127.0.0.1:6001', '127.0.0.1:6002'])
    assert.equal(reply.interval, 120)
  })

  test('a scrape naming no torrent is refused on every transport', async () => {
    const http = bencode.decode((await httpGet(`http://${HOST}:${tr.port}/scrape`)).body)
    assert.ok(http['failure reason'], 'HTTP scrape without info_hash must fail')
    const ws = await wsOpen(`ws://${HOST}:${tr.port}`)
    const reply = await wsRequest(ws, { action: 'scrape' })
    assert.ok(reply['failure reason'])
    ws.close()
    const s = await udpSocket('127.0.0.1')
    const id = await udpConnect(s, HOST, tr.port)
    const udp = await udpRequest(s, HOST, tr.port, scrapePacket(id, []))
    assert.equal(udp?.readUInt32BE(0), 3)
  })

  test('the stats page escapes client-supplied text; stats.json and metrics count', async () => {
    const peerId = Buffer.from('<script>alert(1)//xx')
    const q = announceQuery(hashOf('stats-xss'), 6100, { event: 'started' }, peerId)
    await httpGet(`http://${HOST}:${tr.port}/announce?${q}`)
    const page = (await httpGet(`http://${HOST}:${tr.port}/stats`)).body.toString()
    assert.ok(!page.includes('<script>'), page)
    assert.ok(page.includes('&#60;script&#62;'), page)
    const json = JSON.parse((await httpGet(`http://${HOST}:${tr.port}/stats.json`)).body.toString())
    assert.ok(json.torrents >= 1)
    assert.ok(json.announces.http >= 1)
    const metrics = (await httpGet(`http://${HOST}:${tr.port}/metrics`)).body.toString()
    assert.match(metrics, /^dsync_tracker_torrents \d+$/m)
    assert.match(metrics, /^dsync_tracker_announces_total\{transport="udp"\} \d+$/m)
    assert.match(metrics, /^dsync_tracker_refused_total\{reason="connection-id"\} [1-9]\d*$/m)
  })

  test('an oversized WebSocket message closes the connection', async () => {
    const ws = await wsOpen(`ws://${HOST}:${tr.port}`)
    const closed = new Promise<number>(resolve => ws.once('close', (code: number) => resolve(code)))
    ws.on('error', () => {})
    ws.send('x'.repeat(512 * 1024))
    assert.equal(await closed, 1009)
  })
})

describe('dsync tracker (timeouts, limits, startup errors)', () => {
  test('swarms are pruned after the peer timeout', async () => {
    const tr = await startTrackerProcess('127.0.0.3', ['--interval', '1', '--peer-timeout', '2', '--rate-limit', '0'])
    try {
      const infoHash = hashOf('short-lived')
      await httpGet(`http://127.0.0.3:${tr.port}/announce?${announceQuery(infoHash, 6200)}`)
      const before = JSON.parse((await httpGet(`http://127.0.0.3:${tr.port}/stats.json`)).body.toString())
      assert.equal(before.torrents, 1)
      assert.equal(before.leechers, 1)
      let after: { torrents: number; leechers: number } = before
      for (let i = 0; i < 40 && after.torrents !== 0; i++) {
        await new Promise(r => setTimeout(r, 250))
        after = JSON.parse((await httpGet(`http://127.0.0.3:${tr.port}/stats.json`)).body.toString())
      }
      assert.equal(after.torrents, 0)
      assert.equal(after.leechers, 0)
      const scrape = bencode.decode((await httpGet(`http://127.0.0.3:${tr.port}/scrape?info_hash=${escapeBytes(Buffer.from(infoHash, 'hex'))}`)).body)
      assert.equal(Object.values(scrape.files as Record<string, { incomplete: number }>)[0].incomplete, 0)
    } finally {
      await tr.stop()
    }
  })

  test('per-address rate limit: HTTP answers 429, UDP drops', async () => {
    const tr = await startTrackerProcess('127.0.0.3', ['--rate-limit', '1'])
    try {
      const statuses: number[] = []
      for (let i = 0; i < 12; i++) statuses.push((await httpGet(`http://127.0.0.3:${tr.port}/stats.json`)).status)
      assert.ok(statuses.includes(200) && statuses.includes(429), statuses.join(','))
      const s = await udpSocket('127.0.0.1')
      let answered = 0
      for (let i = 0; i < 12; i++) if (await udpRequest(s, '127.0.0.3', tr.port, connectPacket(), 300)) answered++
      assert.ok(answered < 12, `${answered} of 12 connects answered`)
    } finally {
      await tr.stop()
    }
  })

  test('a port in use is a one-line error naming address:port, exit 6', async () => {
    const blocker = createServer()
    await new Promise<void>(resolve => blocker.listen(0, '127.0.0.3', () => resolve()))
    const port = (blocker.address() as { port: number }).port
    try {
      const r = await runCli(['tracker', '--listen', '127.0.0.3', '--port', String(port)])
      assert.equal(r.code, 6)
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
      assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.3:${port}.*in use`))
    } finally {
      blocker.close()
    }
  })

  test('a bad listen address is a clean error', async () => {
    const bad = await runCli(['tracker', '--listen', 'not-an-ip', '--port', '0'])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /--listen not-an-ip is not an IP address/)
    const foreign = await runCli(['tracker', '--listen', '192.0.2.1', '--port', '0'])
    assert.equal(foreign.code, 6)
    assert.match(foreign.stderr, /^dsync: cannot listen on 192\.0\.2\.1:0/)
    assert.ok(!foreign.stderr.includes('    at '), 'no stack trace')
  })
})
