import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import Server, { type RequestCallback, type TrackerParams, type TrackerWebSocket } from 'bittorrent-tracker/server'
import { clientAddress } from './address.js'
import type { TrackerContext } from './context.js'
import type { Refusal } from './policy.js'

/**
 * Largest WebSocket message accepted. A WebTorrent announce carries up to ~10 SDP offers of
 * 1–3 KB; stock accepts 100 MiB per message, which lets one client make the tracker buffer
 * that much.
 */
export const MAX_WS_MESSAGE = 128 * 1024

/**
 * WebSocket (WebTorrent/WebRTC signalling) stays on bittorrent-tracker's Server: relaying
 * offers and answers between browser peers is its real work, and nothing on the hot path of
 * mirror hosts goes through it. We feed it upgraded sockets (the HTTP server is ours, so
 * address and passkey are checked before the upgrade), cap message size, rate-limit
 * messages, and close its gaps: the allowlist also applies to scrape, a scrape must name
 * torrents, replies carry `min interval`, and empty swarms are pruned.
 */
export class WsSignalling extends Server {
  private readonly addressOf = new WeakMap<TrackerWebSocket, string>()

  constructor(private readonly ctx: TrackerContext) {
    super({
      http: false,
      udp: false,
      stats: false,
      interval: ctx.interval * 1000,
      peersCacheTtl: ctx.peerTimeoutMs,
      ws: { noServer: true, maxPayload: MAX_WS_MESSAGE },
      filter: (infoHash, params, cb) => {
        const refusal = ctx.policy.checkTorrent(infoHash)
        if (refusal) this.refused(params, refusal)
        cb(refusal ? new Error(refusal) : null)
      },
    })
    // Client mistakes are warnings for the tracker, never a crash.
    this.on('warning', () => {})
    this.on('error', () => {})
  }

  /** Called by the HTTP server once the upgrade passed the address and passkey checks. */
  accept(ws: TrackerWebSocket, address: string): void {
    this.addressOf.set(ws, address)
    this.onWebSocketConnection(ws)
  }

  protected override _onWebSocketRequest(socket: TrackerWebSocket, opts: object, params: string | Buffer): void {
    if (this.ctx.admit('ws', this.addressOf.get(socket) ?? '')) return
    super._onWebSocketRequest(socket, opts, params)
  }

  protected override _onAnnounce(params: TrackerParams, cb: RequestCallback): void {
    super._onAnnounce(params, (err, response) => {
      if (!err && response) {
        // Stock then sets a WebSocket peer's interval to a fifth of ours (WebRTC offers go
        // stale): `min interval` must not be longer than the interval it comes with.
        response['min interval'] = Math.min(this.ctx.minInterval, Math.ceil(this.ctx.interval / 5))
        this.ctx.stats.announces.ws++
        if (params.event === 'started' && params.peer_id) this.ctx.stats.noteClient(Buffer.from(params.peer_id, 'hex'))
      }
      cb(err, response)
    })
  }

  protected override _onScrape(params: TrackerParams, cb: RequestCallback): void {
    const hashes = params.info_hash === undefined ? [] : Array.isArray(params.info_hash) ? params.info_hash : [params.info_hash]
    // Stock answers a scrape naming nothing with every torrent it knows.
    if (hashes.length === 0 || hashes.length > 100) return this.scrapeFailure(params, 'info_hash required (at most 100)')
    for (const h of hashes) {
      const refusal = this.ctx.policy.checkTorrent(h)
      if (refusal) {
        this.refused(params, refusal)
        return this.scrapeFailure(params, refusal)
      }
    }
    this.ctx.stats.scrapes.ws++
    super._onScrape(params, cb)
  }

  /** Counts, for /stats and /metrics and for scrapes answered over HTTP. */
  counts(): { torrents: number; peers: number } {
    let peers = 0
    let torrents = 0
    for (const swarm of Object.values(this.torrents)) {
      peers += swarm.peers.length
      torrents++
    }
    return { torrents, peers }
  }

  scrapeOne(infoHash: string): { complete: number; incomplete: number } | undefined {
    const swarm = this.torrents[infoHash]
    return swarm ? { complete: swarm.complete, incomplete: swarm.incomplete } : undefined
  }

  /** Expires silent peers (the LRU does it only when touched) and deletes empty swarms. */
  prune(): number {
    let dropped = 0
    for (const [infoHash, swarm] of Object.entries(this.torrents)) {
      for (const key of swarm.peers.keys.slice()) swarm.peers.peek(key)
      if (swarm.peers.length === 0) {
        delete this.torrents[infoHash]
        dropped++
      }
    }
    return dropped
  }

  /** Reload took torrents off the allowlist: forget their swarms. */
  dropWhere(refused: (infoHash: string) => boolean): void {
    for (const infoHash of Object.keys(this.torrents)) if (refused(infoHash)) delete this.torrents[infoHash]
  }

  private refused(params: TrackerParams, refusal: Refusal): void {
    this.ctx.refuse('ws', params.socket ? this.addressOf.get(params.socket) ?? '' : '', refusal)
  }

  // The stock error reply converts info_hash as one string; for a scrape it is a list.
  private scrapeFailure(params: TrackerParams, reason: string): void {
    params.socket?.send(JSON.stringify({ action: 'scrape', 'failure reason': reason }))
  }
}

const STATUS_TEXT: Record<number, string> = { 403: 'Forbidden', 404: 'Not Found', 429: 'Too Many Requests' }

/**
 * An HTTP upgrade on the tracker's port: the client's address, rate and passkey are checked
 * before the WebSocket handshake, which only then goes to the signalling server. `ws` is null
 * when --no-ws: every upgrade is a 404.
 */
export function handleUpgrade(ctx: TrackerContext, ws: WsSignalling | null, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const address = clientAddress(req.socket.remoteAddress ?? '', req.headers['x-forwarded-for'], ctx.proxies)
  const status = ws ? upgradeRefusal(ctx, req.url, address) : 404
  if (status) {
    socket.end(`HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
    return
  }
  ws!.ws!.handleUpgrade(req, socket, head, conn => ws!.accept(conn, address))
}

/** The HTTP status refusing an upgrade to `/announce` or `/PASSKEY/announce`, or 0 to accept it. */
function upgradeRefusal(ctx: TrackerContext, url: string | undefined, address: string): number {
  const path = (url ?? '/').split('?')[0]
  const m = path === '/' || path === '/announce' ? [] : /^\/([^/]+)(?:\/announce)?\/?$/.exec(path)
  if (!m) return 404
  const refused = ctx.admit('ws', address)
  if (refused) return refused === 'address' ? 403 : 429
  const refusal = ctx.policy.checkKey(m[1])
  if (refusal) {
    ctx.refuse('ws', address, refusal)
    return 403
  }
  return m[1] !== undefined && !ctx.policy.needsPasskey ? 404 : 0
}
