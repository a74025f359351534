import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import bencode from 'bencode'
import WebSocket from 'ws'
import { makeHome, tempDir } from '../testbed/tree.js'
import {
  announcePacket, announceQuery, escapeBytes, httpGet, parseAnnounceReply, scrapePacket, startTrackerProcess,
  udpConnect, udpRequest, udpSocket, wsOpen, wsRequest, type TrackerProcess,
} from '../testbed/tracker-wire.js'

const HOST = '127.0.0.4'
const ALLOWED_SRC = '127.0.0.3'
const DENIED_SRC = '127.0.0.5'
const KEY = 'goodkey-1234'
const BAD_KEY = 'wrongkey-999'
const KNOWN = createHash('sha1').update('known torrent').digest('hex')
const UNKNOWN = createHash('sha1').update('unknown torrent').digest('hex')
const LATER = createHash('sha1').update('allowed after reload').digest('hex')
const binary = (hex: string): string => Buffer.from(hex, 'hex').toString('latin1')

function failureOf(body: Buffer): string | undefined {
  const d = bencode.decode(body)
  return d['failure reason'] ? Buffer.from(d['failure reason']).toString() : undefined
}

function wsConnect(url: string, localAddress = ALLOWED_SRC): Promise<WebSocket> {
  return wsOpen(url, localAddress, 5_000)
}


const wsAnnounce = (infoHash: string): object => ({
  action: 'announce', info_hash: binary(infoHash), peer_id: '-WW0001-000000000002', event: 'started', left: 5, offers: [],
})

describe('dsync tracker --private with passkeys and an address allowlist', () => {
  let tr: TrackerProcess
  let allowFile: string
  let dir: string
  before(async () => {
    // Not tempDir(): its after() would run as soon as this before() hook ends.
    dir = mkdtempSync(join(tmpdir(), 'dsync-tracker-'))
    allowFile = join(dir, 'allow.txt')
    writeFileSync(allowFile, `# torrents we track\n${KNOWN}\n`)
    const keysFile = join(dir, 'keys.txt')
    writeFileSync(keysFile, `${KEY} mirror-a\n`)
    tr = await startTrackerProcess(HOST, ['--private', '--allow-file', allowFile, '--keys-file', keysFile,
      '--allow-address', `127.0.0.1,${ALLOWED_SRC}`, '--rate-limit', '0', '--interval', '300'])
  })
  after(async () => {
    await tr.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  const http = (path: string, src = ALLOWED_SRC): Promise<{ status: number; body: Buffer }> =>
    httpGet(`http://${HOST}:${tr.port}${path}`, src)

  test('HTTP: announce and scrape need a known torrent and a good passkey', async () => {
    const ok = await http(`/${KEY}/announce?${announceQuery(KNOWN, 6301)}`)
    assert.equal(failureOf(ok.body), undefined)
    assert.equal(bencode.decode(ok.body).incomplete, 1)
    assert.equal(failureOf((await http(`/${KEY}/announce?${announceQuery(UNKNOWN, 6301)}`)).body), 'unregistered torrent')
    assert.equal(failureOf((await http(`/${BAD_KEY}/announce?${announceQuery(KNOWN, 6301)}`)).body), 'invalid passkey')
    assert.equal(failureOf((await http(`/announce?${announceQuery(KNOWN, 6301)}`)).body), 'passkey required')

    const scrape = await http(`/${KEY}/scrape?info_hash=${escapeBytes(Buffer.from(KNOWN, 'hex'))}`)
    assert.equal(failureOf(scrape.body), undefined)
    assert.equal(failureOf((await http(`/${KEY}/scrape?info_hash=${escapeBytes(Buffer.from(UNKNOWN, 'hex'))}`)).body), 'unregistered torrent')
    assert.equal(failureOf((await http(`/${BAD_KEY}/scrape?info_hash=${escapeBytes(Buffer.from(KNOWN, 'hex'))}`)).body), 'invalid passkey')
    assert.ok(failureOf((await http(`/${KEY}/scrape`)).body), 'a scrape of everything is refused')
  })

  test('HTTP: stats need the passkey too', async () => {
    assert.equal((await http('/stats.json')).status, 403)
    assert.equal((await http(`/${BAD_KEY}/stats`)).status, 403)
    assert.equal((await http(`/${KEY}/stats.json`)).status, 200)
    assert.equal((await http(`/${KEY}/metrics`)).status, 200)
  })

  test('HTTP and WebSocket: a disallowed address gets no response at all', async () => {
    await assert.rejects(http(`/${KEY}/announce?${announceQuery(KNOWN, 6302)}`, DENIED_SRC), /ECONNRESET|socket hang up/)
    await assert.rejects(http(`/${KEY}/scrape?info_hash=${escapeBytes(Buffer.from(KNOWN, 'hex'))}`, DENIED_SRC), /ECONNRESET|socket hang up/)
    await assert.rejects(http(`/${KEY}/stats`, DENIED_SRC), /ECONNRESET|socket hang up/)
    await assert.rejects(wsConnect(`ws://${HOST}:${tr.port}/${KEY}`, DENIED_SRC), /ECONNRESET|socket hang up/)
  })

  test('UDP: the passkey travels in the BEP 41 URL option; unknown torrents, bad keys and scrapes are refused', async () => {
    const s = await udpSocket(ALLOWED_SRC)
    const id = await udpConnect(s, HOST, tr.port)
    const send = async (infoHash: string, urlData?: string) =>
      parseAnnounceReply((await udpRequest(s, HOST, tr.port, announcePacket({ connectionId: id, infoHash, port: 6303, urlData })))!)
    const ok = await send(KNOWN, `/${KEY}/announce`)
    assert.equal(ok.error, undefined)
    assert.equal(ok.action, 1)
    assert.equal((await send(UNKNOWN, `/${KEY}/announce`)).error, 'unregistered torrent')
    assert.equal((await send(KNOWN, `/${BAD_KEY}/announce`)).error, 'invalid passkey')
    assert.equal((await send(KNOWN)).error, 'passkey required')
    // A UDP scrape has no room for a passkey, so with passkeys on it is refused.
    const scrape = await udpRequest(s, HOST, tr.port, scrapePacket(id, [KNOWN]))
    assert.equal(scrape?.readUInt32BE(0), 3)
    assert.equal(scrape?.toString('utf8', 8), 'passkey required')
  })

  test('UDP: a disallowed address gets no reply, not even to connect', async () => {
    const s = await udpSocket(DENIED_SRC)
    await assert.rejects(udpConnect(s, HOST, tr.port), /no connect reply/)
  })

  test('WebSocket: passkey in the path; unknown torrents refused for announce and scrape', async () => {
    await assert.rejects(wsConnect(`ws://${HOST}:${tr.port}/${BAD_KEY}`), /403/)
    await assert.rejects(wsConnect(`ws://${HOST}:${tr.port}/`), /403/)
    const ws = await wsConnect(`ws://${HOST}:${tr.port}/${KEY}`)
    const ok = await wsRequest(ws, wsAnnounce(KNOWN))
    assert.equal(ok['failure reason'], undefined, JSON.stringify(ok))
    assert.equal((await wsRequest(ws, wsAnnounce(UNKNOWN)))['failure reason'], 'unregistered torrent')
    assert.equal((await wsRequest(ws, { action: 'scrape', info_hash: binary(UNKNOWN) }))['failure reason'], 'unregistered torrent')
    const scrape = await wsRequest(ws, { action: 'scrape', info_hash: binary(KNOWN) })
    assert.equal(scrape['failure reason'], undefined)
    ws.close()
  })

  test('SIGHUP rereads the allowlist; a broken file keeps the old one', async () => {
    const q = `/${KEY}/announce?${announceQuery(LATER, 6304)}`
    assert.equal(failureOf((await http(q)).body), 'unregistered torrent')
    writeFileSync(allowFile, `${KNOWN}\n${LATER}\n`)
    tr.child.kill('SIGHUP')
    await tr.waitFor(e => e.event === 'reload' && e.torrents === 2)
    assert.equal(failureOf((await http(q)).body), undefined)

    writeFileSync(allowFile, `${KNOWN}\nnot-a-hash\n`)
    tr.child.kill('SIGHUP')
    await tr.waitFor(e => e.event === 'reloadFailed')
    assert.match(tr.stderr() + JSON.stringify(tr.events), /allow\.txt:2/)
    assert.equal(failureOf((await http(q)).body), undefined, 'the previous list stays in force')
  })

  test('refusals are logged, one line per client and reason', async () => {
    const refused = tr.events.filter(e => e.event === 'refused')
    assert.ok(refused.some(e => e.reason === 'invalid passkey' && e.transport === 'udp'))
    assert.ok(refused.some(e => e.reason === 'address not allowed' && e.address === DENIED_SRC))
    const keys = refused.map(e => `${e.transport} ${e.address} ${e.reason}`)
    assert.equal(new Set(keys).size, keys.length)
  })
})

describe('dsync tracker --from-home', () => {
  test('tracks the published repos of a dsync home, over UDP scrape too', async () => {
    const dir = tempDir()
    const { home, webroot } = makeHome(dir, { rocky: { 'a.txt': 'a' }, alma: { 'b.txt': 'b' } })
    const info = { length: 1, name: 'rocky', 'piece length': 16384, pieces: Buffer.alloc(20) }
    const infoHash = createHash('sha1').update(bencode.encode(info)).digest('hex')
    mkdirSync(join(webroot, 'rocky', '.dsync'), { recursive: true })
    writeFileSync(join(webroot, 'rocky', '.dsync', 'rocky.torrent'), bencode.encode({ announce: 'udp://127.0.0.1:1', info }))
    // alma has no torrent yet: a warning, not a failure.
    const tr = await startTrackerProcess(HOST, ['--from-home', '--rate-limit', '0'], { DXYNC_HOME: home })
    try {
      const listening = tr.events.find(e => e.event === 'listening')!
      assert.equal(listening.private, true)
      assert.equal(listening.torrents, 1)
      assert.match(JSON.stringify(tr.events), /alma/)
      const s = await udpSocket(ALLOWED_SRC)
      const id = await udpConnect(s, HOST, tr.port)
      const ok = await udpRequest(s, HOST, tr.port, scrapePacket(id, [infoHash]))
      assert.equal(ok?.readUInt32BE(0), 2)
      const refused = await udpRequest(s, HOST, tr.port, scrapePacket(id, [infoHash, UNKNOWN]))
      assert.equal(refused?.readUInt32BE(0), 3)
      assert.equal(refused?.toString('utf8', 8), 'unregistered torrent')
      const announce = parseAnnounceReply((await udpRequest(s, HOST, tr.port, announcePacket({ connectionId: id, infoHash: UNKNOWN, port: 6305 })))!)
      assert.equal(announce.error, 'unregistered torrent')
    } finally {
      await tr.stop()
    }
  })
})
