import { bep46Value, type GenerationRecord } from '../generation/record.js'
import { Dht } from '../shared/dht.js'

/**
 * `dht=true` in xync.conf: announce every served infohash to the BitTorrent DHT on the DTP
 * port (UDP), re-announcing every 15 minutes as BEP 5 peers expect; and put each served
 * repository's BEP 46 item (the record's pre-signed pointer, docs/SCALE.md), re-put every
 * 30 minutes since DHT nodes drop items after about two hours. Off by default and in every
 * test but the loopback-only DHT one (`dht-bootstrap=` names local nodes there).
 */
const REANNOUNCE_MS = 15 * 60 * 1000
const REPUT_MS = 30 * 60 * 1000

export class DhtAnnouncer {
  private dht: Dht | undefined
  private timers: NodeJS.Timeout[] = []
  private readonly infoHashes = new Set<string>()
  private readonly records = new Map<string, GenerationRecord>()

  constructor(
    private readonly port: number,
    private readonly address: string | undefined,
    private readonly onResult: (what: string, result: string) => void,
    private readonly bootstrap?: string[],
    /** firewall.conf, as it is after each reload. */
    private readonly allow?: (address: string) => boolean,
  ) {}

  async start(): Promise<void> {
    this.dht = await Dht.open({ port: this.port, address: this.address, bootstrap: this.bootstrap, allow: this.allow })
    this.timers.push(setInterval(() => this.announceAll(), REANNOUNCE_MS), setInterval(() => this.putAll(), REPUT_MS))
    for (const t of this.timers) t.unref()
    this.announceAll()
    this.putAll()
  }

  set(infoHashes: string[]): void {
    const fresh = infoHashes.filter(h => !this.infoHashes.has(h))
    this.infoHashes.clear()
    for (const h of infoHashes) this.infoHashes.add(h)
    for (const h of fresh) this.announce(h)
  }

  /** The records of the served repositories; a new or newer one is put at once. */
  setRecords(records: GenerationRecord[]): void {
    const fresh = records.filter(r => this.records.get(r.repo)?.seq !== r.seq)
    this.records.clear()
    for (const r of records) this.records.set(r.repo, r)
    for (const r of fresh) this.put(r)
  }

  private announceAll(): void {
    for (const h of this.infoHashes) this.announce(h)
  }

  private putAll(): void {
    for (const r of this.records.values()) this.put(r)
  }

  private announce(infoHash: string): void {
    this.dht?.announce(infoHash, this.port).then(() => this.onResult(infoHash, 'ok'), err => this.onResult(infoHash, (err as Error).message))
  }

  /** The publisher signed this item when it signed the record: any host can put it unchanged. */
  private put(r: GenerationRecord): void {
    this.dht?.put({
      k: Buffer.from(r.key, 'hex'), salt: Buffer.from(r.repo), seq: r.seq, v: bep46Value(r.torrent), sig: Buffer.from(r.dht, 'hex'),
    }).then(n => this.onResult(`${r.repo} (BEP 46 seq ${r.seq})`, `stored on ${n} nodes`), err => this.onResult(r.repo, (err as Error).message))
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t)
    void this.dht?.close()
    this.dht = undefined
  }
}
