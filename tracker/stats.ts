import type { SwarmStore } from './swarm-store.js'

export type Transport = 'http' | 'udp' | 'ws'
export type RefusedReason = 'address' | 'rate' | 'connection-id' | 'torrent' | 'passkey' | 'malformed'

const MAX_CLIENTS = 200

/**
 * Counters for /stats, /stats.json and /metrics. The only client-supplied text shown is
 * the peer-id prefix naming the client software (`-qB4630-`); it is escaped on the HTML
 * page (stock bittorrent-tracker prints peer-id bytes raw: stored XSS).
 */
export class TrackerStats {
  readonly announces: Record<Transport, number> = { http: 0, udp: 0, ws: 0 }
  readonly scrapes: Record<Transport, number> = { http: 0, udp: 0, ws: 0 }
  readonly refused: Record<RefusedReason, number> = {
    address: 0, rate: 0, 'connection-id': 0, torrent: 0, passkey: 0, malformed: 0,
  }
  /** Peer-id prefixes of peers that sent "started", bounded. */
  readonly clients = new Map<string, number>()
  private rateWindow: { at: number; total: number }[] = []
  readonly startedAt = Date.now()

  constructor(private readonly store: SwarmStore, private readonly wsCounts: () => { torrents: number; peers: number }) {}

  noteClient(peerId: Buffer | string): void {
    const raw = typeof peerId === 'string' ? Buffer.from(peerId, 'latin1') : peerId
    // Azureus-style ids name the client in the first 8 bytes; keep only those.
    let name = raw.subarray(0, 8).toString('latin1')
    if (!this.clients.has(name) && this.clients.size >= MAX_CLIENTS) name = '(other)'
    this.clients.set(name, (this.clients.get(name) ?? 0) + 1)
  }

  get totalAnnounces(): number {
    return this.announces.http + this.announces.udp + this.announces.ws
  }

  /** Sampled every few seconds by the server; announces/s over the last minute. */
  sample(now = Date.now()): void {
    this.rateWindow.push({ at: now, total: this.totalAnnounces })
    while (this.rateWindow.length > 2 && now - this.rateWindow[0].at > 60_000) this.rateWindow.shift()
  }

  announcesPerSecond(now = Date.now()): number {
    const first = this.rateWindow[0]
    if (!first || now - first.at < 1) return 0
    return Math.round(((this.totalAnnounces - first.total) * 1000) / (now - first.at) * 10) / 10
  }

  snapshot(): TrackerSnapshot {
    const ws = this.wsCounts()
    return {
      torrents: this.store.torrents + ws.torrents,
      seeders: this.store.seeders,
      leechers: this.store.leechers,
      wsPeers: ws.peers,
      announcesPerSecond: this.announcesPerSecond(),
      announces: { ...this.announces },
      scrapes: { ...this.scrapes },
      refused: { ...this.refused },
      uptimeSeconds: Math.floor((Date.now() - this.startedAt) / 1000),
      clients: Object.fromEntries([...this.clients].sort((a, b) => b[1] - a[1])),
    }
  }

  html(): string {
    const s = this.snapshot()
    const rows = Object.entries(s.clients)
      .map(([name, n]) => `<tr><td><code>${escapeHtml(printable(name))}</code></td><td>${n}</td></tr>`).join('\n')
    return `<!doctype html>
<meta charset="utf-8">
<title>dsync tracker</title>
<h1>${s.torrents} torrents</h1>
<p>${s.seeders} seeders, ${s.leechers} leechers, ${s.wsPeers} WebSocket peers; ${s.announcesPerSecond} announces/s</p>
<p>announces: http ${s.announces.http}, udp ${s.announces.udp}, ws ${s.announces.ws}</p>
<h2>Clients (peer-id prefix, peers started)</h2>
<table>
${rows}
</table>
`
  }

  prometheus(): string {
    const s = this.snapshot()
    const lines = [
      '# HELP dsync_tracker_torrents Torrents with at least one peer.',
      '# TYPE dsync_tracker_torrents gauge',
      `dsync_tracker_torrents ${s.torrents}`,
      '# HELP dsync_tracker_seeders Peers with the whole torrent (HTTP and UDP).',
      '# TYPE dsync_tracker_seeders gauge',
      `dsync_tracker_seeders ${s.seeders}`,
      '# HELP dsync_tracker_leechers Peers still downloading (HTTP and UDP).',
      '# TYPE dsync_tracker_leechers gauge',
      `dsync_tracker_leechers ${s.leechers}`,
      '# HELP dsync_tracker_ws_peers WebSocket (WebRTC) peers.',
      '# TYPE dsync_tracker_ws_peers gauge',
      `dsync_tracker_ws_peers ${s.wsPeers}`,
      '# HELP dsync_tracker_announces_per_second Announces per second over the last minute.',
      '# TYPE dsync_tracker_announces_per_second gauge',
      `dsync_tracker_announces_per_second ${s.announcesPerSecond}`,
      '# HELP dsync_tracker_announces_total Announces answered.',
      '# TYPE dsync_tracker_announces_total counter',
      ...Object.entries(s.announces).map(([k, v]) => `dsync_tracker_announces_total{transport="${k}"} ${v}`),
      '# HELP dsync_tracker_scrapes_total Scrapes answered.',
      '# TYPE dsync_tracker_scrapes_total counter',
      ...Object.entries(s.scrapes).map(([k, v]) => `dsync_tracker_scrapes_total{transport="${k}"} ${v}`),
      '# HELP dsync_tracker_refused_total Requests refused or dropped, by reason.',
      '# TYPE dsync_tracker_refused_total counter',
      ...Object.entries(s.refused).map(([k, v]) => `dsync_tracker_refused_total{reason="${k}"} ${v}`),
    ]
    return lines.join('\n') + '\n'
  }
}

export interface TrackerSnapshot {
  torrents: number
  seeders: number
  leechers: number
  wsPeers: number
  announcesPerSecond: number
  announces: Record<Transport, number>
  scrapes: Record<Transport, number>
  refused: Record<RefusedReason, number>
  uptimeSeconds: number
  clients: Record<string, number>
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, c => `&#${c.charCodeAt(0)};`)
}

/** Control bytes shown as \xNN so the page stays readable whatever the peer id holds. */
function printable(text: string): string {
  return text.replace(/[\x00-\x1f\x7f-\xff]/g, c => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
}
