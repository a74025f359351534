/**
 * The peers of every torrent, shared by the HTTP and UDP front ends (a libtorrent host
 * announcing over UDP and a webtorrent client over HTTP must see each other).
 *
 * Replaces bittorrent-tracker's Swarm, which keeps an LRU of one object per peer (~0.85 KB
 * of heap per peer, measured) and never deletes a swarm. Here a peer is one short string,
 * its compact address, plus one small integer (last-seen second and seeder bit) in parallel
 * arrays; a swarm whose last peer expires is deleted. Peers for a reply are a run of the
 * array from a random start, as opentracker does, so a reply costs O(numwant), not O(swarm).
 */
export type AnnounceEvent = 'started' | 'stopped' | 'completed' | 'update'

export interface AnnounceResult {
  complete: number
  incomplete: number
  /** Compact peers of each family, self excluded. */
  peers4: string[]
  peers6: string[]
}

export interface ScrapeResult {
  complete: number
  incomplete: number
  downloaded: number
}

class Swarm {
  /** Compact address of each peer (6 bytes IPv4, 18 bytes IPv6, as latin1). */
  keys: string[] = []
  /** (seconds since the store started << 1) | seeder, at the same index as keys. */
  meta: number[] = []
  index = new Map<string, number>()
  seeders = 0
  leechers = 0
  downloaded = 0

  remove(i: number): void {
    const last = this.keys.length - 1
    const key = this.keys[i]
    if (this.meta[i] & 1) this.seeders--
    else this.leechers--
    this.index.delete(key)
    if (i !== last) {
      const moved = this.keys[last]
      this.keys[i] = moved
      this.meta[i] = this.meta[last]
      this.index.set(moved, i)
    }
    this.keys.pop()
    this.meta.pop()
  }
}

export class SwarmStore {
  private readonly swarms = new Map<string, Swarm>()
  private readonly epoch = Date.now()
  seeders = 0
  leechers = 0

  get torrents(): number {
    return this.swarms.size
  }

  get peers(): number {
    return this.seeders + this.leechers
  }

  /** Seconds since the store started: fits a small integer for 30 years, shifted by one. */
  private clock(now: number): number {
    return Math.floor((now - this.epoch) / 1000)
  }

  announce(infoHash: string, peer: string, event: AnnounceEvent, seeder: boolean, numwant: number,
    families: 4 | 6 | 46, now = Date.now()): AnnounceResult {
    let swarm = this.swarms.get(infoHash)
    if (event === 'stopped') {
      if (swarm) {
        const i = swarm.index.get(peer)
        if (i !== undefined) {
          this.count(swarm.meta[i] & 1, -1)
          swarm.remove(i)
          if (swarm.keys.length === 0) this.swarms.delete(infoHash)
        }
      }
      return { complete: swarm?.seeders ?? 0, incomplete: swarm?.leechers ?? 0, peers4: [], peers6: [] }
    }
    if (!swarm) {
      swarm = new Swarm()
      this.swarms.set(infoHash, swarm)
    }
    const stamp = (this.clock(now) << 1) | (seeder ? 1 : 0)
    const i = swarm.index.get(peer)
    if (i === undefined) {
      swarm.index.set(peer, swarm.keys.length)
      swarm.keys.push(peer)
      swarm.meta.push(stamp)
      if (seeder) swarm.seeders++
      else swarm.leechers++
      this.count(seeder ? 1 : 0, 1)
      if (event === 'completed') swarm.downloaded++
    } else {
      const wasSeeder = swarm.meta[i] & 1
      if (wasSeeder !== (seeder ? 1 : 0)) {
        this.count(wasSeeder, -1)
        this.count(seeder ? 1 : 0, 1)
        if (seeder) { swarm.seeders++; swarm.leechers-- } else { swarm.seeders--; swarm.leechers++ }
        if (seeder && event === 'completed') swarm.downloaded++
      }
      swarm.meta[i] = stamp
    }
    return { complete: swarm.seeders, incomplete: swarm.leechers, ...this.pick(swarm, peer, numwant, families, seeder) }
  }

  /** A run of up to `numwant` peers from a random start, skipping the asker (and other seeders, for a seeder). */
  private pick(swarm: Swarm, self: string, numwant: number, families: 4 | 6 | 46, seeder: boolean): { peers4: string[]; peers6: string[] } {
    const peers4: string[] = []
    const peers6: string[] = []
    const n = swarm.keys.length
    if (numwant <= 0 || n <= 1) return { peers4, peers6 }
    const start = n <= numwant ? 0 : Math.floor(Math.random() * n)
    for (let k = 0; k < n && peers4.length + peers6.length < numwant; k++) {
      const j = start + k < n ? start + k : start + k - n
      const key = swarm.keys[j]
      if (key === self) continue
      // Seeders have nothing to gain from each other.
      if (seeder && swarm.meta[j] & 1) continue
      if (key.length === 6) {
        if (families !== 6) peers4.push(key)
      } else if (families !== 4) peers6.push(key)
    }
    return { peers4, peers6 }
  }

  scrape(infoHash: string): ScrapeResult {
    const swarm = this.swarms.get(infoHash)
    return swarm
      ? { complete: swarm.seeders, incomplete: swarm.leechers, downloaded: swarm.downloaded }
      : { complete: 0, incomplete: 0, downloaded: 0 }
  }

  has(infoHash: string): boolean {
    return this.swarms.has(infoHash)
  }

  /** Drops peers not heard from for `timeoutMs`, then swarms left empty. */
  prune(timeoutMs: number, now = Date.now()): { peers: number; torrents: number } {
    const oldest = this.clock(now) - Math.ceil(timeoutMs / 1000)
    let peers = 0
    let torrents = 0
    for (const [infoHash, swarm] of this.swarms) {
      for (let i = swarm.keys.length - 1; i >= 0; i--) {
        if (swarm.meta[i] >> 1 < oldest) {
          this.count(swarm.meta[i] & 1, -1)
          swarm.remove(i)
          peers++
        }
      }
      if (swarm.keys.length === 0) {
        this.swarms.delete(infoHash)
        torrents++
      }
    }
    return { peers, torrents }
  }

  /** Swarms no longer allowed (private allowlist reloaded without them) go at once. */
  dropWhere(refused: (infoHash: string) => boolean): number {
    let dropped = 0
    for (const [infoHash, swarm] of this.swarms) {
      if (!refused(infoHash)) continue
      this.seeders -= swarm.seeders
      this.leechers -= swarm.leechers
      this.swarms.delete(infoHash)
      dropped++
    }
    return dropped
  }

  private count(seederBit: number, delta: number): void {
    if (seederBit) this.seeders += delta
    else this.leechers += delta
  }
}
