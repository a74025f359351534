import type { IncomingMessage, ServerResponse } from 'node:http'
import { clientAddress, compactPeer, expandPeer } from './address.js'
import type { TrackerContext } from './context.js'
import type { Refusal } from './policy.js'
import type { AnnounceEvent } from './swarm-store.js'

const MAX_NUMWANT = 200
const MAX_SCRAPE = 100

/**
 * Announce, scrape and the stats pages over HTTP. Our own handler rather than stock
 * bittorrent-tracker's: it must answer from the same swarm store as UDP, take the client
 * address from the right end of X-Forwarded-For and only behind a configured proxy, run
 * every request (scrape and stats too) past the private-mode policy, and refuse a scrape
 * that names no torrent (stock returns every torrent it tracks).
 */
export function handleHttp(ctx: TrackerContext, req: IncomingMessage, res: ServerResponse): void {
  const address = clientAddress(req.socket.remoteAddress ?? '', req.headers['x-forwarded-for'], ctx.proxies)
  // Behind a proxy the socket check could not see the client; the real one is checked here.
  const refused = ctx.admit('http', address)
  if (refused === 'address') {
    res.statusCode = 403
    return void res.end()
  }
  if (req.method !== 'GET') {
    res.statusCode = 405
    return void res.end()
  }
  if (refused === 'rate') {
    res.statusCode = 429
    return void res.end(failure('rate limited, slow down'))
  }
  const url = req.url ?? '/'
  const q = url.indexOf('?')
  const path = q < 0 ? url : url.slice(0, q)
  const query = q < 0 ? '' : url.slice(q + 1)
  const m = /^(?:\/([^/]+))?\/(announce|scrape|stats|stats\.json|metrics)$/.exec(path)
  if (!m) {
    res.statusCode = 404
    return void res.end('not found\n')
  }
  const [, passkey, route] = m
  const keyRefusal = ctx.policy.checkKey(passkey)
  if (keyRefusal) {
    res.statusCode = route === 'announce' || route === 'scrape' ? 200 : 403
    return refuse(ctx, res, address, keyRefusal)
  }
  if (passkey !== undefined && !ctx.policy.needsPasskey) {
    res.statusCode = 404
    return void res.end('not found\n')
  }
  switch (route) {
    case 'announce': return announce(ctx, res, query, address)
    case 'scrape': return scrape(ctx, res, query, address)
    case 'stats':
      res.setHeader('Content-Type', 'text/html; charset=utf-8')
      res.setHeader('Content-Security-Policy', "default-src 'none'")
      return void res.end(ctx.stats.html())
    case 'stats.json':
      res.setHeader('Content-Type', 'application/json')
      return void res.end(JSON.stringify(ctx.stats.snapshot()))
    case 'metrics':
      res.setHeader('Content-Type', 'text/plain; version=0.0.4')
      return void res.end(ctx.stats.prometheus())
  }
}

function announce(ctx: TrackerContext, res: ServerResponse, query: string, address: string): void {
  const p = parseQuery(query)
  const infoHash = one(p.get('info_hash'))
  const peerId = one(p.get('peer_id'))
  const port = Number(one(p.get('port'))?.toString('latin1'))
  if (!infoHash || infoHash.length !== 20) return bad(ctx, res, 'invalid info_hash')
  if (!peerId || peerId.length !== 20) return bad(ctx, res, 'invalid peer_id')
  if (!Number.isInteger(port) || port <= 0 || port > 65535) return bad(ctx, res, 'invalid port')
  const hex = infoHash.toString('hex')
  const refusal = ctx.policy.checkTorrent(hex)
  if (refusal) {
    return refuse(ctx, res, address, refusal)
  }
  const eventText = one(p.get('event'))?.toString('latin1') ?? ''
  const event: AnnounceEvent = eventText === 'started' || eventText === 'stopped' || eventText === 'completed' ? eventText : 'update'
  const leftText = one(p.get('left'))?.toString('latin1')
  const seeder = leftText !== undefined && Number(leftText) === 0
  const askedText = one(p.get('numwant'))?.toString('latin1')
  const asked = askedText === undefined ? ctx.defaultNumwant : Number(askedText)
  const numwant = event === 'stopped' ? 0 : Number.isFinite(asked) ? Math.max(0, Math.min(MAX_NUMWANT, Math.floor(asked))) : ctx.defaultNumwant
  const peer = compactPeer(address, port)
  if (!peer) return bad(ctx, res, 'unusable address')
  if (event === 'started') ctx.stats.noteClient(peerId)
  const r = ctx.store.announce(hex, peer, event, seeder, numwant, 46)
  ctx.stats.announces.http++
  const compact = one(p.get('compact'))?.toString('latin1') !== '0'
  const head = `d8:completei${r.complete}e10:incompletei${r.incomplete}e8:intervali${ctx.interval}e12:min intervali${ctx.minInterval}e`
  let body: Buffer
  if (compact) {
    const peers4 = r.peers4.join('')
    const peers6 = r.peers6.join('')
    body = Buffer.from(`${head}5:peers${peers4.length}:${peers4}${peers6.length ? `6:peers6${peers6.length}:${peers6}` : ''}e`, 'latin1')
  } else {
    // BEP 3 dictionaries without peer ids (the no_peer_id form): ids are not stored.
    const list = [...r.peers4, ...r.peers6].map(k => {
      const { ip, port } = expandPeer(k)
      return `d2:ip${ip.length}:${ip}4:porti${port}ee`
    }).join('')
    body = Buffer.from(`${head}5:peersl${list}ee`, 'latin1')
  }
  res.setHeader('Content-Type', 'text/plain')
  res.end(body)
}

function scrape(ctx: TrackerContext, res: ServerResponse, query: string, address: string): void {
  const hashes = parseQuery(query).get('info_hash') ?? []
  if (hashes.length === 0) return bad(ctx, res, 'info_hash required')
  if (hashes.length > MAX_SCRAPE) return bad(ctx, res, `at most ${MAX_SCRAPE} info_hash per scrape`)
  const files: string[] = []
  for (const h of [...hashes].sort(Buffer.compare)) {
    if (h.length !== 20) return bad(ctx, res, 'invalid info_hash')
    const hex = h.toString('hex')
    const refusal = ctx.policy.checkTorrent(hex)
    if (refusal) {
      return refuse(ctx, res, address, refusal)
    }
    const s = ctx.store.scrape(hex)
    const ws = ctx.wsScrape?.(hex)
    const complete = s.complete + (ws?.complete ?? 0)
    const incomplete = s.incomplete + (ws?.incomplete ?? 0)
    files.push(`20:${h.toString('latin1')}d8:completei${complete}e10:downloadedi${s.downloaded}e10:incompletei${incomplete}ee`)
  }
  ctx.stats.scrapes.http++
  const flags = `5:flagsd20:min_request_intervali${ctx.minInterval}ee`
  res.setHeader('Content-Type', 'text/plain')
  res.end(Buffer.from(`d5:filesd${files.join('')}e${flags}e`, 'latin1'))
}

function bad(ctx: TrackerContext, res: ServerResponse, reason: string): void {
  ctx.stats.refused.malformed++
  res.end(failure(reason))
}

/** A torrent the policy refuses: counted, logged, answered with BEP 3's failure reason. */
function refuse(ctx: TrackerContext, res: ServerResponse, address: string, refusal: Refusal): void {
  ctx.refuse('http', address, refusal)
  res.end(failure(refusal))
}

export function failure(reason: string): Buffer {
  const r = Buffer.from(reason, 'utf8')
  return Buffer.concat([Buffer.from(`d14:failure reason${r.length}:`), r, Buffer.from('e')])
}

function one(values: Buffer[] | undefined): Buffer | undefined {
  return values?.[0]
}

/** Query values as raw bytes: info_hash and peer_id are binary, percent-encoded byte by byte. */
export function parseQuery(query: string): Map<string, Buffer[]> {
  const out = new Map<string, Buffer[]>()
  if (!query) return out
  for (const part of query.split('&')) {
    if (!part) continue
    const eq = part.indexOf('=')
    const key = eq < 0 ? part : part.slice(0, eq)
    const value = percentDecode(eq < 0 ? '' : part.slice(eq + 1))
    const list = out.get(key)
    if (list) list.push(value)
    else out.set(key, [value])
  }
  return out
}

function percentDecode(text: string): Buffer {
  const out = Buffer.allocUnsafe(text.length)
  let n = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x25 && i + 2 < text.length && isHex(text.charCodeAt(i + 1)) && isHex(text.charCodeAt(i + 2))) {
      out[n++] = parseInt(text.substr(i + 1, 2), 16)
      i += 2
    } else if (c === 0x2b) out[n++] = 0x20
    else out[n++] = c & 0xff
  }
  return out.subarray(0, n)
}

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102)
}
