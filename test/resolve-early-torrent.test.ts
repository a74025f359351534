import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { test } from 'node:test'
import { resolveDtpHost } from '../src/sync/dtp-host.js'

// A plain HTTP server on 127.0.24.20 answering as a DTP host's API does (repository info, a
// record, the .torrent); it holds the info's answer until the .torrent is asked for (or 2 s).

const TORRENT = Buffer.from('d4:infod4:name5:rockyee')
const INFO_HASH = 'a'.repeat(40)

interface Seen { order: string[]; torrentGets: number }

async function fakeHost(): Promise<{ base: string; seen: Seen; close: () => void }> {
  const seen: Seen = { order: [], torrentGets: 0 }
  let torrentAsked: () => void = () => undefined
  const asked = new Promise<void>(resolve => (torrentAsked = resolve))
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    seen.order.push(`GET ${req.url}`)
    if (req.url === '/rocky/rocky.torrent') {
      seen.torrentGets++
      torrentAsked()
      return res.end(TORRENT)
    }
    if (req.url === '/rocky/generation') return res.end('DSYNC-GENERATION 1\n')
    if (req.url === '/rocky/') {
      const answer = () => {
        seen.order.push('info answered')
        res.end(JSON.stringify({ repo: 'rocky', infoHash: INFO_HASH, torrent: '/rocky/rocky.torrent', record: '/rocky/generation', hosts: [] }))
      }
      void Promise.race([asked, new Promise(r => setTimeout(r, 2000))]).then(answer)
      return
    }
    res.statusCode = 404
    res.end()
  })
  await new Promise<void>(resolve => server.listen({ host: '127.0.24.20', port: 0 }, resolve))
  const { port } = server.address() as { port: number }
  return { base: `http://127.0.24.20:${port}/rocky/`, seen, close: () => server.close() }
}

test('a bootstrap asks a DTP host for its .torrent with the repository info, not after it; fetchTorrent then gets those bytes without asking again', async () => {
  const h = await fakeHost()
  try {
    const r = await resolveDtpHost('dtp://127.0.24.20/rocky', h.base, 'rocky', { host: '127.0.24.20', port: 1 }, () => INFO_HASH, undefined, true)
    const asked = h.seen.order.indexOf('GET /rocky/rocky.torrent')
    assert.ok(asked >= 0 && asked < h.seen.order.indexOf('info answered'), h.seen.order.join(', '))
    assert.deepEqual(await r.fetchTorrent!(), TORRENT)
    assert.equal(h.seen.torrentGets, 1)
  } finally {
    h.close()
  }
})

test('an update (DEST has data.dsync, the delta route may serve it) leaves the .torrent unasked until the route wants it', async () => {
  const h = await fakeHost()
  try {
    const r = await resolveDtpHost('dtp://127.0.24.20/rocky', h.base, 'rocky', { host: '127.0.24.20', port: 1 }, () => INFO_HASH, undefined, false)
    assert.equal(h.seen.torrentGets, 0, h.seen.order.join(', '))
    assert.deepEqual(await r.fetchTorrent!(), TORRENT)
    assert.equal(h.seen.torrentGets, 1)
  } finally {
    h.close()
  }
})
