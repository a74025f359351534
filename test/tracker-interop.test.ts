import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { tempDir } from '../testbed/tree.js'
import { announcePacket, parseAnnounceReply, startTrackerProcess, udpConnect, udpRequest, udpSocket } from '../testbed/tracker-wire.js'

const PYTHON = '/usr/bin/python3'
const HOST = '127.0.0.6'
const KEY = 'interop-key-1'

const hasLibtorrent = spawnSync(PYTHON, ['-c', 'import libtorrent'], { stdio: 'ignore' }).status === 0
const skip = hasLibtorrent ? false : `libtorrent is not importable by ${PYTHON} (Debian package python3-libtorrent)`

// A libtorrent session on loopback (DHT, LSD, UPnP and NAT-PMP off) that adds the torrent by
// infohash with our trackers, reports each tracker reply, and stays announced until stdin closes.
const LT_SCRIPT = `
import json, sys, time, tempfile
import libtorrent as lt
cfg = json.loads(sys.argv[1])
ses = lt.session({
    'listen_interfaces': '127.0.0.1:0', 'enable_dht': False, 'enable_lsd': False, 'enable_upnp': False,
    'enable_natpmp': False, 'alert_mask': lt.alert_category.tracker | lt.alert_category.error | lt.alert_category.status,
    'announce_to_all_trackers': True, 'announce_to_all_tiers': True,
    # libtorrent only lets a localhost tracker's path be exactly /announce (SSRF guard); the
    # passkey path /KEY/announce on our loopback test tracker would be blocked.
    'ssrf_mitigation': False,
})
atp = lt.add_torrent_params()
atp.info_hashes = lt.info_hash_t(lt.sha1_hash(bytes.fromhex(cfg['info_hash'])))
atp.trackers = cfg['trackers']
atp.save_path = tempfile.mkdtemp()
h = ses.add_torrent(atp)
print(json.dumps({'event': 'listening', 'port': ses.listen_port()}), flush=True)
deadline = time.time() + 45
got = set()
while time.time() < deadline and len(got) < len(cfg['trackers']):
    ses.wait_for_alert(500)
    for a in ses.pop_alerts():
        if isinstance(a, lt.tracker_reply_alert):
            got.add(a.tracker_url())
            print(json.dumps({'event': 'reply', 'url': a.tracker_url(), 'peers': a.num_peers}), flush=True)
        elif isinstance(a, (lt.tracker_error_alert, lt.tracker_warning_alert)):
            print(json.dumps({'event': 'error', 'url': a.tracker_url(), 'message': a.message()}), flush=True)
print(json.dumps({'event': 'done'}), flush=True)
sys.stdin.readline()
`

interface LtEvent { event: string; url?: string; peers?: number; port?: number; message?: string }

/** Runs the libtorrent session until it has heard from every tracker; returns its events and a stop function. */
async function libtorrentAnnounce(infoHash: string, trackers: string[]): Promise<{ events: LtEvent[]; stop: () => Promise<void> }> {
  const child = spawn(PYTHON, ['-c', LT_SCRIPT, JSON.stringify({ info_hash: infoHash, trackers })], { stdio: ['pipe', 'pipe', 'pipe'] })
  const events: LtEvent[] = []
  let stderr = ''
  child.stderr.on('data', d => (stderr += d))
  const exited = new Promise<void>(resolve => child.on('exit', () => resolve()))
  await new Promise<void>((resolve, reject) => {
    let buf = ''
    const timer = setTimeout(() => reject(new Error(`libtorrent did not finish: ${JSON.stringify(events)} ${stderr}`)), 90_000)
    child.stdout.on('data', d => {
      buf += d
      let nl
      while ((nl = buf.indexOf('\n')) >= 0) {
        const e = JSON.parse(buf.slice(0, nl)) as LtEvent
        buf = buf.slice(nl + 1)
        events.push(e)
        if (e.event === 'done') {
          clearTimeout(timer)
          resolve()
        }
      }
    })
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      // The signal too: one suite run saw "exited null" (killed) with nothing on stderr.
      if (!events.some(e => e.event === 'done')) reject(new Error(`libtorrent exited ${code ?? `on ${signal}`}: ${stderr}`))
    })
  })
  return {
    events,
    stop: async () => {
      child.stdin.end('\n')
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(timer)
    },
  }
}

async function interop(extraArgs: string[], path: string, urlData: string | undefined, infoHash: string): Promise<void> {
  const tr = await startTrackerProcess(HOST, ['--rate-limit', '0', ...extraArgs])
  try {
    // A seeder the tracker knows before libtorrent asks.
    const seeder = await udpSocket('127.0.0.1')
    const id = await udpConnect(seeder, HOST, tr.port)
    const seeded = await udpRequest(seeder, HOST, tr.port, announcePacket({ connectionId: id, infoHash, port: 7777, left: 0, urlData }))
    assert.equal(parseAnnounceReply(seeded!).error, undefined)

    const trackers = [`udp://${HOST}:${tr.port}${path}`, `http://${HOST}:${tr.port}${path}`]
    const lt = await libtorrentAnnounce(infoHash, trackers)
    try {
      const replies = lt.events.filter(e => e.event === 'reply')
      assert.deepEqual(replies.map(r => r.url).sort(), [...trackers].sort(), JSON.stringify(lt.events))
      for (const r of replies) assert.ok(r.peers! >= 1, `libtorrent got no peers from ${r.url}: ${JSON.stringify(lt.events)}`)
      // And the other way round: our client is told about the libtorrent peer.
      const ltPort = lt.events.find(e => e.event === 'listening')!.port
      const leecher = await udpSocket('127.0.0.1')
      const lid = await udpConnect(leecher, HOST, tr.port)
      const reply = parseAnnounceReply((await udpRequest(leecher, HOST, tr.port, announcePacket({ connectionId: lid, infoHash, port: 7778, urlData })))!)
      assert.ok(reply.peers.includes(`127.0.0.1:${ltPort}`), `${JSON.stringify(reply)} lacks libtorrent's 127.0.0.1:${ltPort}`)
      assert.ok(!tr.events.some(e => e.event === 'refused'), JSON.stringify(tr.events))
    } finally {
      await lt.stop()
    }
  } finally {
    await tr.stop()
  }
}

test('libtorrent announces over UDP and HTTP and gets peers', { skip, timeout: 180_000 }, async () => {
  await interop([], '/announce', undefined, createHash('sha1').update('interop public').digest('hex'))
})

test('libtorrent announces to a private tracker with a passkey (UDP via BEP 41, HTTP in the path)', { skip, timeout: 180_000 }, async () => {
  const infoHash = createHash('sha1').update('interop private').digest('hex')
  const dir = tempDir()
  writeFileSync(join(dir, 'allow'), infoHash + '\n')
  writeFileSync(join(dir, 'keys'), KEY + '\n')
  await interop(['--private', '--allow-file', join(dir, 'allow'), '--keys-file', join(dir, 'keys')],
    `/${KEY}/announce`, `/${KEY}/announce`, infoHash)
})
