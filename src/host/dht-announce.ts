/**
 * `dht=true` in xync.conf: announce every served infohash to the BitTorrent DHT on the DTP
 * port (UDP), re-announcing every 15 minutes as BEP 5 peers expect. Off by default and in
 * every test (no public network here); bittorrent-dht is loaded only when asked for.
 */
interface DhtNode {
  listen(port: number, address: string | undefined, cb: () => void): void
  announce(infoHash: string, port: number, cb: (err?: Error) => void): void
  on(event: 'error' | 'warning', fn: (err: Error) => void): void
  destroy(cb?: () => void): void
}

const REANNOUNCE_MS = 15 * 60 * 1000

export class DhtAnnouncer {
  private dht: DhtNode | undefined
  private timer: NodeJS.Timeout | undefined
  private readonly infoHashes = new Set<string>()

  constructor(private readonly port: number, private readonly address: string | undefined, private readonly onResult: (infoHash: string, result: string) => void) {}

  async start(): Promise<void> {
    const specifier = 'bittorrent-dht'
    const mod = (await import(specifier)) as { default: new (opts: object) => DhtNode }
    this.dht = new mod.default({})
    this.dht.on('error', err => this.onResult('-', err.message))
    this.dht.on('warning', () => undefined)
    await new Promise<void>(resolve => this.dht!.listen(this.port, this.address, resolve))
    this.timer = setInterval(() => this.announceAll(), REANNOUNCE_MS)
    this.timer.unref()
    this.announceAll()
  }

  set(infoHashes: string[]): void {
    const fresh = infoHashes.filter(h => !this.infoHashes.has(h))
    this.infoHashes.clear()
    for (const h of infoHashes) this.infoHashes.add(h)
    for (const h of fresh) this.announce(h)
  }

  private announceAll(): void {
    for (const h of this.infoHashes) this.announce(h)
  }

  private announce(infoHash: string): void {
    this.dht?.announce(infoHash, this.port, err => this.onResult(infoHash, err ? err.message : 'ok'))
  }

  stop(): void {
    clearInterval(this.timer)
    this.dht?.destroy()
    this.dht = undefined
  }
}
