import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import Wire, { type WireExtensionClass } from 'bittorrent-protocol'
import { makeFirewall, type Firewall } from '../config/dtp-config.js'
import { Announcer } from '../shared/announce.js'
import type { GenerationRecord } from '../generation/record.js'
import { DhtAnnouncer } from './dht-announce.js'
import { FdCache } from './fd-cache.js'
import { loadHostConfig, type HostConfig } from './host-config.js'
import { PeerFramer } from './peer-framer.js'
import { DEFAULT_LIMITS, limitsFrom, type HostLimits } from './limits.js'
import { loadGeneration } from './generation.js'
import { createHttpApi, handOver } from './http-api.js'
import { Listener } from './listener.js'
import type { HostLog } from './log.js'
import { loadRecord, type LoadedRecord, type OfferedDelta } from './record-loader.js'
import { manifestStamp, repoFolder, servedRepos } from './repo-selection.js'
import { Seeder } from './seeder.js'
import { SendBudget } from './send-budget.js'
import type { HostStatus } from './status.js'
import { UploadLimits } from './upload-limit.js'
import { hostAddresses, KnownHosts } from './known-hosts.js'
import { formatAddress, type PeerAddress } from '../swarm/address.js'
import { answersFor } from './handshake-probe.js'
import { pexExtension } from '../swarm/pex.js'
import { plainAddress } from '../shared/address.js'
import { makePeerIdBytes } from '../shared/peer-id.js'

export interface HostOptions {
  /** The DSYNC home to read (xync.conf, repos/, dtp/), unless `config` is given. */
  home?: string
  /** The configuration in memory, asked again on every reload; no home is read. */
  config?: () => HostConfig
  log: HostLog
  /** Open files kept across all repositories. */
  maxOpenFiles?: number
  rsyncdConf?: string
}

/** One "refused" or "limited" log line per address per this interval: a scanner must not flood the log. */
const REFUSED_LOG_INTERVAL_MS = 60_000

interface Served {
  seeder: Seeder
  /** A sharded repository's shard seeders (the seeder above serves its index torrent). */
  shards: Seeder[]
  stamp: string
  announcer?: Announcer
  /** The signed record of this generation and the deltas it offers (docs/SCALE.md). */
  record: LoadedRecord
  /** One seeder per delta torrent on offer, keyed by infohash. */
  deltaSeeders: Map<string, Seeder>
  shardAnnouncers?: Announcer[]
}

/**
 * The DTP host: one listener (peer wire + HTTP, behind the allowlist) and one Seeder per
 * served repository, routed by infohash at the handshake. reload() re-reads every config
 * and swaps in new generations without touching other repositories' peers.
 */
export class DtpHost {
  private config!: HostConfig
  private firewall: Firewall = makeFirewall([])
  private motd = ''
  private readonly fds: FdCache
  private readonly listener: Listener
  private readonly http: Server
  private readonly byRepo = new Map<string, Served>()
  private readonly byInfoHash = new Map<string, Seeder>()
  private refused: { repo: string; reason: string }[] = []
  private readonly refusedLogged = new Map<string, number>()
  private hostLimits: HostLimits = DEFAULT_LIMITS
  private readonly budget = new SendBudget(DEFAULT_LIMITS)
  /** The largest bitfield message any served torrent needs (PeerFramer). */
  private bitfieldMax = 0
  private readonly peerId = makePeerIdBytes()
  private listen: string[] = []
  private port = 0
  private readonly startedAt = new Date().toISOString()
  private listenKey = ''
  private dht: DhtAnnouncer | undefined
  private readonly limits = new UploadLimits()
  private readonly knownHosts = new KnownHosts(makeFirewall([]), (repo, addr) => this.answersFor(repo, addr))
  private readonly counters = { httpRequests: 0, refusedConnections: 0 }

  constructor(private readonly opts: HostOptions) {
    this.fds = new FdCache(opts.maxOpenFiles ?? 128)
    this.listener = new Listener(this.firewall, this.hostLimits, {
      peerWire: (socket, remote) => this.onPeerWire(socket, remote),
      http: socket => handOver(this.http, socket),
      refused: remote => this.onRefused(remote),
      limited: (address, reason) => this.onLimited(address, reason),
    })
    this.http = createHttpApi({
      seeder: repo => this.byRepo.get(repo)?.seeder,
      record: repo => this.byRepo.get(repo)?.record,
      status: () => this.status(),
      motd: () => this.motd,
      hosts: repo => this.knownHosts.forRepo(repo).map(formatAddress),
      uploadLimit: repo => this.limits.limits(repo) ? (conn, bytes) => this.limits.take(repo, conn, bytes) : undefined,
      forgetUpload: (repo, conn) => this.limits.forget(repo, conn),
    }, this.listener.watch, () => this.hostLimits.idleTimeoutMs)
    this.http.prependListener('request', () => this.counters.httpRequests++)
    this.budget.onAbuse = address => this.listener.watch.penalize(address)
  }

  private get log(): HostLog {
    return this.opts.log
  }

  /** Loads configs and repositories, then listens. Throws DsyncError on bad config or a busy port. */
  async start(): Promise<void> {
    this.loadConfigs()
    // The allowlist must be in force before the first connection is accepted.
    this.listener.setFirewall(this.firewall)
    this.loadRepos()
    this.port = this.config.main.port
    this.listenKey = `${this.config.main.listen.join(',')}:${this.port}`
    this.listen = await this.listener.listen(this.config.main.listen, this.port)
    this.log.event('listening', { addresses: this.listen.join(', '), repos: this.byRepo.size })
    for (const served of this.byRepo.values()) this.startAnnounce(served)
    if (this.config.main.dht) {
      const only = this.config.main.listen.length === 1 ? this.config.main.listen[0] : undefined
      this.dht = new DhtAnnouncer(this.port, only, (infoHash, result) => this.log.event('announce', { repo: infoHash, tracker: 'dht', result }), this.config.main.dhtBootstrap,
        address => this.firewall.allows(address))
      try {
        await this.dht.start()
        this.dht.set([...this.byInfoHash.keys()])
        this.dht.setRecords(this.servedRecords())
      } catch (err) {
        this.log.event('error', { reason: `dht: ${(err as Error).message}` })
        this.dht = undefined
      }
    }
  }

  /** SIGHUP / `dsync reload`: a bad config leaves the running service as it was. */
  reload(): { ok: boolean; message: string } {
    try {
      this.loadConfigs()
      this.listener.setFirewall(this.firewall)
      for (const served of this.byRepo.values()) {
        served.seeder.pushMotd(this.motd)
        served.seeder.dropPeersWhere(addr => !this.firewall.allows(addr))
      }
      this.loadRepos()
      if (`${this.config.main.listen.join(',')}:${this.config.main.port}` !== this.listenKey) {
        this.log.event('listenChanged', {})
      }
      this.dht?.set([...this.byInfoHash.keys()])
      this.dht?.setRecords(this.servedRecords())
      this.log.event('reloaded', { repos: this.byRepo.size, refused: this.refused.length })
      return { ok: true, message: `${this.byRepo.size} repositories served` }
    } catch (err) {
      this.log.event('reloadFailed', { reason: (err as Error).message })
      return { ok: false, message: (err as Error).message }
    }
  }

  async stop(): Promise<void> {
    this.log.event('stopping', {})
    await Promise.all([...this.byRepo.values()].flatMap(s => [s.announcer, ...(s.shardAnnouncers ?? [])].map(a => a?.stop())))
    for (const served of this.byRepo.values()) for (const s of [served.seeder, ...served.shards]) s.close()
    this.dht?.stop()
    this.limits.close()
    await this.listener.close()
    await this.fds.closeAll()
  }

  status(): HostStatus {
    return {
      pid: process.pid,
      startedAt: this.startedAt,
      listen: this.listen,
      firewall: { restricted: this.firewall.restricted, entries: this.firewall.entries },
      motd: this.motd,
      repos: [...this.byRepo.values()].map(s => s.seeder.status()).sort((a, b) => a.repo.localeCompare(b.repo)),
      refused: this.refused,
      openFiles: this.fds.openCount,
      counters: { ...this.counters },
      uploadLimit: this.limits.configured,
      connections: this.listener.watch.size,
      queuedBytes: this.budget.totalBytes,
      memory: memoryFigures(),
    }
  }

  private loadConfigs(): void {
    const config = this.opts.config ? this.opts.config() : loadHostConfig(this.opts.home, this.opts.rsyncdConf)
    for (const w of config.warnings) this.log.event('error', { reason: w })
    this.config = config
    this.firewall = config.firewall
    this.motd = config.motd
    // Applied live: blocks already waiting go at the new rate, no peer is disconnected.
    const before = JSON.stringify(this.limits.configured)
    this.limits.configure(config.main.uploadLimit, new Map(config.repos.filter(r => r.uploadLimit > 0).map(r => [r.name, r.uploadLimit])))
    if (JSON.stringify(this.limits.configured) !== before) {
      const repos = Object.entries(this.limits.configured.repos).map(([name, mbit]) => `${name}=${mbit}`).join(', ') || '-'
      this.log.event('uploadLimit', { host: this.limits.configured.host, repos })
    }
    this.hostLimits = limitsFrom(config.main)
    this.knownHosts.configure(hostAddresses(config.main.peers), config.firewall, config.main.listen.map(host => ({ host, port: config.main.port })))
    this.listener.watch.setLimits(this.hostLimits)
    this.budget.setLimits(this.hostLimits)
  }

  /** (Re)builds the set of seeders from list.conf; unchanged repositories keep their peers. */
  private loadRepos(): void {
    const listed = this.config.listed
    const wanted = servedRepos(this.config, listed)
    const refused: { repo: string; reason: string }[] = []
    const keep = new Set<string>()
    for (const repo of wanted) {
      keep.add(repo.name)
      const stamp = manifestStamp(repo)
      const current = this.byRepo.get(repo.name)
      if (current && current.stamp === stamp && current.seeder.gen.save === repo.save) continue
      const started = Date.now()
      let gen
      try {
        gen = loadGeneration(repo.name, repo.save, { inodesLater: true })
      } catch (err) {
        const reason = (err as Error).message
        refused.push({ repo: repo.name, reason })
        this.log.event('repoRefused', { repo: repo.name, reason })
        continue // an old generation keeps being served until a good one replaces it
      }
      const record = loadRecord(gen)
      if (record.problem) this.log.event('error', { repo: repo.name, reason: record.problem })
      if (current && current.seeder.gen.infoHash === gen.infoHash) {
        current.stamp = stamp
        this.setRecord(current, record)
        continue
      }
      if (current) this.retire(repo.name, current)
      const seeder = new Seeder(gen, this.fds, this.log, this.peerId, () => this.motd, this.budget, this.limits, this.pexFor(repo.name))
      // "Total uploaded" is the repository's, across generations.
      seeder.uploaded = current?.seeder.uploaded ?? 0
      seeder.requests = current?.seeder.requests ?? 0
      seeder.staleRejects = current?.seeder.staleRejects ?? 0
      const shards = (gen.shards ?? []).map(sg => new Seeder(sg, this.fds, this.log, this.peerId, () => this.motd, this.budget, this.limits))
      const served: Served = { seeder, shards, stamp, record: { deltas: new Map() }, deltaSeeders: new Map() }
      this.byRepo.set(repo.name, served)
      for (const s of [seeder, ...shards]) this.byInfoHash.set(s.gen.infoHash, s)
      this.setRecord(served, record)
      this.log.event('repoLoaded', {
        repo: repo.name, infoHash: gen.infoHash, files: gen.files, bytes: gen.bytes,
        pieces: gen.pieceCount, seconds: ((Date.now() - started) / 1000).toFixed(2), filesHashed: 0,
      })
      if (this.listen.length > 0) this.startAnnounce(served)
    }
    for (const [name, served] of this.byRepo) {
      if (!keep.has(name)) {
        this.retire(name, served)
        this.log.event('repoDropped', { repo: name })
      }
    }
    const servedFolders = new Set(wanted.map(r => repoFolder(this.config, r.save)))
    for (const folder of listed) {
      if (!servedFolders.has(folder)) {
        refused.push({ repo: `/${folder}`, reason: 'listed in list.conf but no published repository (dsync=true) has that folder' })
      }
    }
    this.refused = refused
    this.bitfieldMax = Math.max(0, ...[...this.byRepo.values()].map(s => 1 + Math.ceil(s.seeder.gen.pieceCount / 8)))
  }

  private servedRecords(): GenerationRecord[] {
    return [...this.byRepo.values()].flatMap(s => (s.record.record ? [s.record.record] : []))
  }

  /** Swaps in a generation's record and seeds its delta torrents; unchanged ones keep their peers. */
  private setRecord(served: Served, record: LoadedRecord): void {
    served.record = record
    const wanted = new Map<string, OfferedDelta>()
    for (const d of record.deltas.values()) if (d.gen && !wanted.has(d.gen.infoHash)) wanted.set(d.gen.infoHash, d)
    for (const [hash, seeder] of served.deltaSeeders) {
      if (wanted.has(hash)) continue
      served.deltaSeeders.delete(hash)
      if (this.byInfoHash.get(hash) === seeder) this.byInfoHash.delete(hash)
      seeder.close()
    }
    for (const [hash, d] of wanted) {
      if (served.deltaSeeders.has(hash) || this.byInfoHash.has(hash)) continue
      const seeder = new Seeder(d.gen!, this.fds, this.log, this.peerId, () => this.motd, this.budget, this.limits, this.pexFor(served.seeder.gen.repo))
      served.deltaSeeders.set(hash, seeder)
      this.byInfoHash.set(hash, seeder)
    }
  }

  private retire(name: string, served: Served): void {
    this.setRecord(served, { deltas: new Map() })
    this.byRepo.delete(name)
    for (const s of [served.seeder, ...served.shards]) {
      if (this.byInfoHash.get(s.gen.infoHash) === s) this.byInfoHash.delete(s.gen.infoHash)
      s.close()
    }
    void served.announcer?.stop()
    for (const a of served.shardAnnouncers ?? []) void a.stop()
  }

  /** ut_pex on every connection of a repository: tells the other hosts known, learns the ones the peer knows. */
  private pexFor(repo: string): (remote: string) => WireExtensionClass {
    return remote => pexExtension(() => this.knownHosts.forRepo(repo, remote), peers => this.knownHosts.learn(repo, peers, remote))
  }

  /** Does `addr` answer a handshake for the repository's current generation, from our listen address? */
  private answersFor(repo: string, addr: PeerAddress): Promise<boolean> {
    const infoHash = this.byRepo.get(repo)?.seeder.gen.infoHash
    if (!infoHash) return Promise.resolve(false)
    const from = this.config.main.listen.length === 1 ? this.config.main.listen[0] : undefined
    return answersFor(addr, infoHash, this.peerId, from)
  }

  private startAnnounce(served: Served): void {
    const trackers = served.seeder.gen.trackers
    if (trackers.length === 0 || served.announcer) return
    served.announcer = this.announcerFor(served.seeder, trackers)
    // Each shard is a swarm of its own: standard clients find its peers through the trackers.
    served.shardAnnouncers = served.shards.map(s => this.announcerFor(s, trackers))
  }

  private announcerFor(seeder: Seeder, trackers: string[]): Announcer {
    const specific = this.config.main.listen.length === 1 ? this.config.main.listen[0] : undefined
    const announcer = new Announcer({
      infoHash: seeder.gen.infoHash, peerId: this.peerId, port: this.port, localAddress: specific,
      uploaded: () => seeder.uploaded,
    }, trackers, (tracker, result) => this.log.event('announce', { repo: seeder.gen.repo, tracker, result }))
    announcer.start()
    return announcer
  }

  private onPeerWire(socket: Socket, remote: string): void {
    const wire = new Wire('tcpIncoming')
    // Oversized messages refused; requests go to the session straight from the socket's bytes
    // once it is attached, everything else to the Wire.
    const framer = new PeerFramer(() => this.bitfieldMax, bytes => wire.write(bytes))
    socket.once('close', () => wire.destroy())
    // Fed by hand rather than piped: a PeerSession pauses the socket to stop reading the
    // requests of a peer that reads nothing, and a pipe would resume it.
    socket.on('data', (chunk: Buffer) => {
      const problem = framer.push(chunk)
      if (problem) {
        this.onLimited(socket.remoteAddress ?? '', problem.reason)
        if (problem.penalize) this.listener.watch.penalize(socket.remoteAddress ?? '')
        socket.destroy()
      }
    })
    socket.once('end', () => wire.end())
    wire.once('handshake', (infoHash: string) => {
      const seeder = this.byInfoHash.get(infoHash)
      if (!seeder) {
        this.log.event('error', { peer: remote, reason: `unknown infohash ${infoHash}` })
        socket.destroy()
        return
      }
      this.listener.watch.headDone(socket)
      this.listener.watch.watchIdle(socket, () => framer.partialSince)
      framer.taker = seeder.attach(wire, socket, remote)
    })
    wire.pipe(socket)
    socket.resume()
  }

  private onRefused(remote: string): void {
    this.counters.refusedConnections++
    if (this.firstThisMinute(`refused ${remote}`)) this.log.event('refused', { peer: plainAddress(remote) })
  }

  private onLimited(address: string, reason: string): void {
    if (this.firstThisMinute(`limited ${address}`)) this.log.event('limited', { peer: plainAddress(address), reason })
  }

  private firstThisMinute(key: string): boolean {
    const now = Date.now()
    const last = this.refusedLogged.get(key) ?? 0
    if (now - last < REFUSED_LOG_INTERVAL_MS) return false
    if (this.refusedLogged.size > 10_000) this.refusedLogged.clear()
    this.refusedLogged.set(key, now)
    return true
  }
}

function memoryFigures(): NonNullable<HostStatus['memory']> {
  const m = process.memoryUsage()
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers }
}
