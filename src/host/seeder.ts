import { statSync } from 'node:fs'
import type { Socket } from 'node:net'
import { repoFiles } from '../manifest/paths.js'
import type { Wire, WireExtensionClass } from 'bittorrent-protocol'
import { FdCache } from './fd-cache.js'
import type { Generation } from './generation.js'
import type { HostLog } from './log.js'
import { PeerSession } from './peer-session.js'
import { PieceReader } from './piece-reader.js'
import type { SendBudget } from './send-budget.js'
import type { UploadLimits } from './upload-limit.js'
import { metadataExtension, motdExtension } from './wire-extensions.js'

export interface RepoStatus {
  repo: string
  infoHash: string
  generation: string
  files: number
  bytes: number
  pieces: number
  peers: number
  /** Bytes per second over the last seconds, summed over peers. */
  uploadRate: number
  uploaded: number
  staleFiles: number
  /** Block requests received, and those refused because a file changed on disk (across generations). */
  requests: number
  staleRejects: number
  /** When gendsync wrote this generation's data.dsync (ms since the epoch; 0 when unknown). */
  madeAt: number
  magnet: string
}

/**
 * Seeds one generation of one repository to every peer that handshakes with its infohash.
 * A new generation (new data.dsync) is a new swarm and gets a new Seeder; the old one is
 * closed with its peers, leaving other repositories' peers alone.
 */
export class Seeder {
  readonly reader: PieceReader
  readonly sessions = new Set<PeerSession>()
  readonly bitfield: Buffer
  readonly metadataExt
  readonly motdExt
  uploaded = 0
  requests = 0
  staleRejects = 0
  readonly madeAt: number
  private firstBlockLogged = false

  constructor(
    readonly gen: Generation,
    fds: FdCache,
    private readonly log: HostLog,
    readonly peerId: Buffer,
    motd: () => string,
    private readonly budget: SendBudget,
    private readonly limits?: UploadLimits,
    /** BEP 11 for one connection (remote host:port), or none. */
    readonly pex?: (remote: string) => WireExtensionClass,
  ) {
    this.reader = new PieceReader(gen, fds, (path, reason) => log.event('stale', { repo: gen.repo, path, reason }))
    this.bitfield = allPieces(gen.pieceCount)
    this.metadataExt = metadataExtension(gen.infoBytes)
    this.motdExt = motdExtension(motd)
    this.madeAt = manifestTime(gen)
  }

  /** Takes over a wire whose handshake named this repository's infohash. */
  attach(wire: Wire, socket: Socket, remote: string): PeerSession {
    const session = new PeerSession(this, wire, socket, remote, this.log, this.budget)
    this.sessions.add(session)
    this.log.event('peer', { peer: remote, repo: this.gen.repo, peers: this.sessions.size })
    session.onClose(() => {
      this.sessions.delete(session)
      this.limits?.forget(this.gen.repo, session)
      this.log.event('peerGone', { peer: remote, repo: this.gen.repo, uploaded: session.uploaded })
    })
    return session
  }

  /** Undefined: serve now; a promise: the upload limit lets the block go when it resolves. */
  throttle(peer: object, bytes: number): Promise<void> | undefined {
    return this.limits?.take(this.gen.repo, peer, bytes)
  }

  countUpload(bytes: number, remote: string): void {
    this.uploaded += bytes
    if (!this.firstBlockLogged) {
      this.firstBlockLogged = true
      this.log.event('firstBlock', { repo: this.gen.repo, peer: remote, filesOpened: this.reader.filesOpened })
    }
  }

  pushMotd(text: string): void {
    for (const s of this.sessions) s.sendMotd(text)
  }

  dropPeersWhere(test: (remote: string) => boolean): void {
    for (const s of this.sessions) if (test(s.remoteAddress)) s.destroy()
  }

  close(): void {
    for (const s of this.sessions) s.destroy()
  }

  status(): RepoStatus {
    let rate = 0
    for (const s of this.sessions) rate += s.uploadRate()
    return {
      repo: this.gen.repo, infoHash: this.gen.infoHash, generation: this.gen.digest,
      files: this.gen.files, bytes: this.gen.bytes, pieces: this.gen.pieceCount,
      peers: this.sessions.size, uploadRate: Math.round(rate), uploaded: this.uploaded,
      staleFiles: this.reader.stale.size, requests: this.requests, staleRejects: this.staleRejects,
      madeAt: this.madeAt, magnet: this.gen.magnet,
    }
  }
}

/** The generation's age is its data.dsync's: gendsync writes it last. */
function manifestTime(gen: Generation): number {
  try {
    return statSync(repoFiles(gen.save, gen.repo).manifest).mtimeMs
  } catch {
    return 0
  }
}

/** BEP 3 bitfield with every piece set and the spare bits of the last byte clear. */
function allPieces(count: number): Buffer {
  const buf = Buffer.alloc(Math.ceil(count / 8), 0xff)
  const spare = buf.length * 8 - count
  if (spare > 0) buf[buf.length - 1] = (0xff << spare) & 0xff
  return buf
}
