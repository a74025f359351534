import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { CLIENT_ANNOUNCE_PORT, SETTINGS, STALL_MS } from '../config/defaults.js'
import { isRepoName } from '../config/repo-config.js'
import { DsyncError, ExitCode, fsError } from '../errors.js'
import { t } from '../i18n/index.js'
import { isSafeRelativePath } from '../manifest/entry.js'
import { parseManifest, type Manifest } from '../manifest/format.js'
import { DSYNC_DIR, MANIFEST_TORRENT_PATH, repoFiles } from '../manifest/paths.js'
import { acquireLock } from '../util/lock.js'
import { readTorrentInfo, type TorrentInfo } from '../torrent/read.js'
import { Downloader } from '../swarm/downloader.js'
import { makePeerId } from '../shared/peer-id.js'
import type { PeerAddress, PeerConnection } from '../swarm/peer.js'
import { Swarm } from '../swarm/swarm.js'
import { announceToTrackers } from '../swarm/trackers.js'
import { magnetLink } from '../torrent/build.js'
import { MAX_PIECE_LENGTH, MIN_PIECE_LENGTH, type LayoutFile } from '../torrent/layout.js'
import { matchTorrentToManifest } from '../torrent/match.js'
import { fileSpans, pieceMap, type PieceMap } from '../torrent/piece-map.js'
import { writeFileAtomic } from '../util/atomic-write.js'
import { sha256Hex } from '../generation/delta.js'
import { generationFiles } from '../generation/files.js'
import type { GenerationRecord } from '../generation/record.js'
import type { ManifestEntry } from '../manifest/entry.js'
import { applyPlan } from './apply.js'
import { pullViaDeltas } from './delta-route.js'
import type { DhtLookupOptions } from './bep46.js'
import { gateRecord, mustMatch } from './record-gate.js'
import { makePlan, type Plan } from './plan.js'
import { resolveSource, TORRENT_CAP, type ResolvedSource } from './source.js'
import { Staging } from './staging.js'
import { pieceVerifies, transferFiles, watchDownload, type TransferProgress } from './transfer.js'

export interface PullOptions {
  sources: string[]
  dest: string
  peers?: PeerAddress[]
  trackers?: string[]
  connections?: number
  noDelete?: boolean
  dryRun?: boolean
  force?: boolean
  /** Refuse to delete more than this percentage of DEST's entries (without force). */
  deleteLimit?: number
  indexFiles: string[]
  localAddress?: string
  /** xync.conf ipadd=: peer connections spread over these local addresses. */
  localAddresses?: string[]
  onProgress?: (p: TransferProgress & { phase: 'metadata' | 'manifest' | 'files' }) => void
  onWarning?: (message: string) => void
  onMotd?: (peer: string, text: string) => void
  /** Each peer connection as it is made (tests count connections and sample per-host bytes). */
  onPeer?: (peer: PeerConnection) => void
  /** Test hook: called after each apply item and step (see applyPlan), and after the commit. */
  onApplyStep?: (step: string, done?: number) => void
  /** The caller holds DEST's lock already (dsync sync); otherwise pull takes it. */
  lockHeld?: boolean
  /** The publisher's key (dsync-key=, --key): records not signed by it are refused. */
  key?: string
  /** DHT nodes to start from for a BEP 46 (btpk) source; undefined: the public defaults. */
  dhtBootstrap?: string[]
}

export interface PullResult {
  dest: string
  /** The repository's name (the torrent's). */
  repo: string
  infoHash: string
  upToDate: boolean
  dryRun: boolean
  added: number
  changed: number
  removed: number
  filesFetched: number
  filesCopiedLocally: number
  bytesToFetch: number
  bytesReceived: number
  bytesPerHost: Record<string, number>
  seconds: number
  plan?: { added: string[]; changed: string[]; removed: string[] }
  /** How the new data.dsync was reached: the delta chain, or the full torrent. */
  route: 'full' | 'deltas'
  /** Deltas followed (route 'deltas'). */
  deltas?: number
  /** The signed record's sequence number, when the source had one. */
  seq?: number
  /** The record was checked against a pinned key. */
  verified: boolean
  /** Bytes fetched over HTTP: host info, record, deltas, torrents (file data not included). */
  metadataBytes: number
}

/** Largest data.dsync accepted: ~3 million entries; a bigger one is refused, not allocated. */
const MANIFEST_CAP = 512 << 20

/** How long a sync with trackers and no peer yet waits for the trackers to name one. */
const TRACKER_WAIT_MS = 15_000

/** Mass deletions of a handful of entries are ordinary churn; the guard is for real losses. */
const GUARD_MIN_ENTRIES = 10

/**
 * Brings DEST to the generation SOURCE names, pulling from every host at once:
 * signed record (when the host has one) → the new data.dsync, rebuilt from DEST's through the
 * delta chain, or else from the torrent (verified by it) → plan against DEST → fetch only what
 * is missing into staging (verified piece by piece, then by SHA-256) → apply in a safe order
 * → DEST's data.dsync last, as the commit record.
 */
export async function pull(opts: PullOptions): Promise<PullResult> {
  const started = Date.now()
  const resolved = await resolveAll(opts.sources, { bootstrap: opts.dhtBootstrap, localAddress: opts.localAddress })
  const first = resolved[0]
  // The trust decision comes before anything is fetched from peers or written (docs/SCALE.md).
  const record = gateRecord(first.record, { key: opts.key ?? first.key, dest: opts.dest, from: first.source, repo: first.repo, onWarning: opts.onWarning })
  if (record) mustMatch(first.source, 'torrent', first.infoHash, record.torrent)
  for (const r of resolved.slice(1)) {
    if (r.infoHash !== first.infoHash) opts.onWarning?.(`${r.source}: at another generation (${r.infoHash}); using its host as a peer only if it has ${first.infoHash}`)
  }
  // A host's welcome message arrives over HTTP and again over the peer wire: shown once.
  const shown = new Set<string>()
  const onMotd = (host: string, text: string) => {
    if (shown.has(text)) return
    shown.add(text)
    opts.onMotd?.(host, text)
  }
  for (const r of resolved) if (r.motd) onMotd(r.motd.host, r.motd.text)
  const ctx: PullContext = { opts, resolved, record, started, onMotd }
  if (record && first.baseUrl) {
    const viaDeltas = await pullViaDeltas(ctx, record, first.baseUrl)
    if (viaDeltas) return viaDeltas
  }
  return pullFull(ctx)
}

/** What both routes share: the options, the resolved sources and the checked record. */
export interface PullContext {
  opts: PullOptions
  resolved: ResolvedSource[]
  record?: GenerationRecord
  started: number
  onMotd: (host: string, text: string) => void
  /** HTTP bytes a route fetched beyond the sources' own (deltas, delta torrents). */
  extraHttpBytes?: number
}

/** A swarm for one infohash with every known host added and the trackers asked. */
export function openSwarm(ctx: PullContext, infoHash: string, torrentTrackers: string[] = []): { swarm: Swarm; stop: () => void } {
  const { opts, resolved } = ctx
  const swarm = new Swarm({
    infoHash, peerId: makePeerId(), maxConnections: opts.connections ?? SETTINGS.connections.default, localAddress: opts.localAddress, localAddresses: opts.localAddresses, onMotd: ctx.onMotd,
  })
  if (opts.onPeer) swarm.on('peer', opts.onPeer)
  swarm.on('lost', (peer: string, reason: string) => {
    if (reason !== 'sync finished') opts.onWarning?.(t('sync.peerDropped', { peer, reason }))
  })
  let trackers = unique([...(opts.trackers ?? []), ...resolved.flatMap(r => r.trackers)])
  if (trackers.length === 0) trackers = torrentTrackers
  for (const p of [...(opts.peers ?? []), ...resolved.flatMap(r => r.peers)]) swarm.add(p)
  const announcer = announceToTrackers(infoHash, makePeerId(), trackers, CLIENT_ANNOUNCE_PORT, a => swarm.add(a), opts.onWarning)
  if (trackers.length > 0) swarm.expectPeersFor(TRACKER_WAIT_MS)
  return { swarm, stop: () => { announcer.stop(); swarm.close() } }
}

/** The route every source supports: the repository torrent, then data.dsync as its first file. */
async function pullFull(ctx: PullContext): Promise<PullResult> {
  const { opts, resolved, record } = ctx
  const infoHash = resolved[0].infoHash
  // Over HTTP first when a host offers it: a refused torrent then leaves no peer dialled.
  const withTorrent = resolved.find(r => r.infoHash === infoHash && (r.torrent || r.fetchTorrent))
  const fromHost = withTorrent?.torrent ?? await withTorrent?.fetchTorrent?.()
  let net = openSwarm(ctx, infoHash)
  try {
    const torrent = fromHost ?? await metadataFromPeers(net.swarm, infoHash)
    const info = parseTorrent(torrent, resolved[0].source, infoHash)
    if (info.trackers.length > 0 && (opts.trackers ?? []).length + resolved.flatMap(r => r.trackers).length === 0) {
      net.stop()
      net = openSwarm(ctx, infoHash, info.trackers)
    }
    const swarm = net.swarm
    const layout = layoutOf(info)
    const map = { ...pieceMap(layout, info.pieceLength), infoHash }
    const files = repoFiles(opts.dest, info.name)
    const previousBytes = readOrUndefined(files.manifest)
    const sameGeneration = previousBytes !== undefined && previousBytes.length === map.files[0].length &&
      fileSpans(map, 0).every(s => pieceVerifies(previousBytes.subarray(s.fileOffset, s.fileOffset + s.dataLength), s, info.pieces))
    const manifestBytes = sameGeneration ? previousBytes : await fetchManifest(swarm, map, info.pieces, opts)
    if (record) mustMatch(resolved[0].source, 'data.dsync', sha256Hex(manifestBytes), record.manifest.sha256)
    const manifest = parseUpstreamManifest(manifestBytes, resolved[0].source)
    const matched = matchTorrentToManifest(info, manifest, manifestBytes.length)
    if (typeof matched === 'string') throw new DsyncError(ExitCode.badData, 'sync.manifestMismatch', { from: resolved[0].source, reason: matched })
    const previous = previousBytes && !sameGeneration ? tryParse(previousBytes, files.manifest) : sameGeneration ? manifest : undefined
    const indexByPath = new Map(map.files.map((f, i) => [f.path, i]))
    return await executePlan(ctx, {
      repo: info.name, infoHash, manifest, manifestBytes, previous, sameGeneration, route: 'full',
      fetch: async (items, staging) => {
        const toFetch = new Map(items.map(([hex, entry]) => [indexByPath.get(entry.path)!, hex]))
        const transfer = await transferFiles({
          swarm, map, hashes: info.pieces, staging, files: toFetch, onWarning: opts.onWarning, stallMs: STALL_MS, infoHash,
          onProgress: p => opts.onProgress?.({ ...p, phase: 'files' }),
        })
        swarm.close()
        return transfer
      },
      commit: () => {
        writeFileAtomic(files.torrent, torrent)
        writeFileAtomic(files.magnet, magnetLink(infoHash, info.name, info.trackers) + '\n')
      },
    })
  } finally {
    net.stop()
  }
}

/** One route's contribution to executePlan: the new list, how to fetch, what else to commit. */
export interface Route {
  repo: string
  infoHash: string
  manifest: Manifest
  manifestBytes: Buffer
  /** DEST's own data.dsync when it has a valid one (the plan trusts what it vouches for). */
  previous?: Manifest
  /** DEST's data.dsync is already this generation's: nothing to commit when the plan is empty. */
  sameGeneration: boolean
  route: 'full' | 'deltas'
  deltas?: number
  /** Downloads these contents (SHA-256 hex, first entry) into staging. */
  fetch: (items: [string, ManifestEntry][], staging: Staging) => Promise<{ bytesReceived: number; bytesPerPeer: Record<string, number> }>
  /** Writes the route's own files under DEST/.dsync/ after data.dsync (the torrent, the magnet link). */
  commit: () => void | Promise<void>
  /** Written before data.dsync (deltas a host re-serving DEST offers). */
  beforeCommit?: () => void
}

/** Plan → guard → stage (local copies, downloads) → apply → commit; the same for both routes. */
export async function executePlan(ctx: PullContext, r: Route): Promise<PullResult> {
  const { opts, record } = ctx
  const files = repoFiles(opts.dest, r.repo)
  try {
    mkdirSync(join(opts.dest, DSYNC_DIR), { recursive: true })
  } catch (err) {
    throw fsError(err, opts.dest, 'write')
  }
  // Two runs on one DEST would share staging and interleave their applies.
  const releaseLock = opts.lockHeld ? undefined : acquireLock(join(opts.dest, DSYNC_DIR, 'lock')).release
  try {
    const plan = await makePlan({ dest: opts.dest, upstream: r.manifest, previous: r.previous, onWarning: opts.onWarning })
    if (opts.noDelete) plan.deletes = []
    // diff reports what a pull would do, the guard's refusal included; it does not refuse.
    if (!opts.dryRun) guardDeletes(plan, opts)
    const result: PullResult = {
      dest: opts.dest, repo: r.repo, infoHash: r.infoHash, upToDate: isEmpty(plan), dryRun: opts.dryRun === true,
      added: plan.added.length, changed: plan.changed.length, removed: plan.deletes.length + plan.displaced.length,
      filesFetched: 0, filesCopiedLocally: 0, bytesToFetch: plan.fetchBytes, bytesReceived: 0, bytesPerHost: {}, seconds: 0,
      route: r.route, deltas: r.deltas, seq: record?.seq, verified: record !== undefined && (opts.key ?? ctx.resolved[0].key) !== undefined, metadataBytes: 0,
    }
    if (opts.dryRun) {
      result.plan = describe(plan)
      return finish(ctx, result)
    }
    const sameRecord = !record || record.bytes.equals(readOrUndefined(generationFiles(opts.dest).record) ?? Buffer.alloc(0))
    if (result.upToDate && r.sameGeneration && sameRecord) return finish(ctx, result)

    const staging = new Staging(opts.dest)
    const items: [string, ManifestEntry][] = []
    for (const [hex, entry] of plan.fetch) {
      if (staging.has(hex, entry.size)) continue
      // Empty files are in data.dsync only, not in any torrent: nothing to fetch.
      if (entry.size === 0) {
        staging.putEmpty(hex)
        continue
      }
      items.push([hex, entry])
    }
    result.filesCopiedLocally = copyLocal(plan, staging)
    const transfer = await r.fetch(items, staging)
    result.filesFetched = items.length
    result.bytesReceived = transfer.bytesReceived
    result.bytesPerHost = transfer.bytesPerPeer

    // Power loss, not only SIGKILL: staged data reaches the disk before the commit record.
    await staging.syncAll(plan.place.map(f => f.sha256!.toString('hex')))
    applyPlan({ dest: opts.dest, plan, staging, indexFiles: opts.indexFiles, onStep: opts.onApplyStep })
    r.beforeCommit?.()
    if (record) writeFileAtomic(generationFiles(opts.dest).record, record.bytes)
    // The commit record: until this rename, a re-run sees the old generation and resumes.
    writeFileAtomic(files.manifest, r.manifestBytes)
    opts.onApplyStep?.('commit')
    await r.commit()
    staging.prune(new Set())
    return finish(ctx, result)
  } finally {
    releaseLock?.()
  }
}

/** Contents DEST holds under another path are copied into staging instead of fetched. */
function copyLocal(plan: Plan, staging: Staging): number {
  let copied = 0
  const placedSize = new Map(plan.place.map(f => [f.sha256!.toString('hex'), f.size]))
  for (const [hex, from] of plan.local) {
    const size = placedSize.get(hex)
    if (size === undefined) continue
    if (!staging.has(hex, size) && !staging.copyIn(hex, from)) {
      throw new DsyncError(ExitCode.io, 'fs.failed', { action: 'read', path: from, reason: 'changed while being copied' })
    }
    copied++
  }
  return copied
}

async function resolveAll(sources: string[], dht: DhtLookupOptions): Promise<ResolvedSource[]> {
  const out: ResolvedSource[] = []
  let lastError: unknown
  for (const s of sources) {
    try {
      out.push(await resolveSource(s, (torrent, from) => parseTorrent(torrent, from).infoHash, dht))
    } catch (err) {
      lastError = err
    }
  }
  if (out.length === 0) throw lastError
  return out
}

/** A 200k-file torrent takes a noticeable time to read; a source's torrent is read once. */
const parsedTorrents = new WeakMap<Buffer, TorrentInfo>()

function parseTorrent(torrent: Buffer, from: string, expectHash?: string): TorrentInfo {
  let info = parsedTorrents.get(torrent)
  if (!info) {
    try {
      info = readTorrentInfo(torrent)
    } catch (err) {
      throw new DsyncError(ExitCode.badData, 'sync.badTorrent', { from, reason: (err as Error).message })
    }
  }
  if (expectHash && info.infoHash !== expectHash) {
    throw new DsyncError(ExitCode.badData, 'sync.badTorrent', { from, reason: `infohash ${info.infoHash}, expected ${expectHash}` })
  }
  if (info.files[0]?.path !== MANIFEST_TORRENT_PATH || info.files[0].pad) {
    throw new DsyncError(ExitCode.badData, 'sync.notDsyncTorrent', { from, reason: `its first file is not ${MANIFEST_TORRENT_PATH}` })
  }
  // Nothing is ever written at a torrent path (only at data.dsync's, which are checked
  // too), but a torrent naming one is hostile or broken: refuse it before anything else.
  const unsafe = info.files.find(f => !f.pad && !isSafeRelativePath(f.path))
  if (unsafe) throw new DsyncError(ExitCode.badData, 'sync.badTorrent', { from, reason: `unsafe path "${unsafe.path}"` })
  // The name becomes file names under DEST/.dsync/ (NAME.torrent): the repo-name rule applies.
  if (!isRepoName(info.name)) {
    throw new DsyncError(ExitCode.badData, 'sync.badTorrent', { from, reason: `unsafe name "${info.name}"` })
  }
  if (info.files[0].length > MANIFEST_CAP) {
    throw new DsyncError(ExitCode.badData, 'sync.tooLarge', { what: 'data.dsync', from, cap: MANIFEST_CAP })
  }
  if (info.pieceLength < MIN_PIECE_LENGTH || info.pieceLength > MAX_PIECE_LENGTH || (info.pieceLength & (info.pieceLength - 1)) !== 0) {
    throw new DsyncError(ExitCode.badData, 'sync.badTorrent', { from, reason: `piece length ${info.pieceLength}` })
  }
  parsedTorrents.set(torrent, info)
  return info
}

function layoutOf(info: TorrentInfo): LayoutFile[] {
  let offset = 0
  return info.files.map(f => {
    const out = { path: f.path, length: f.length, pad: f.pad, offset }
    offset += f.length
    return out
  })
}

async function metadataFromPeers(swarm: Swarm, infoHash: string): Promise<Buffer> {
  const tried = new Set<PeerConnection>()
  return new Promise<Buffer>((resolve, reject) => {
    let settled = false
    const attempt = (peer: PeerConnection) => {
      if (settled || tried.has(peer)) return
      tried.add(peer)
      peer.fetchMetadata(TORRENT_CAP).then(info => {
        if (settled) return
        settled = true
        cleanup()
        resolve(Buffer.concat([Buffer.from('d4:info'), info, Buffer.from('e')]))
      }, (err: Error) => {
        peer.close(`no metadata: ${err.message}`)
        check()
      })
    }
    const started = Date.now()
    const check = () => {
      if (settled) return
      const pending = [...swarm.connected].some(p => !tried.has(p))
      const stalled = Date.now() - started > STALL_MS
      if (stalled || (!pending && !swarm.hasProspects() && swarm.connected.size === 0)) {
        settled = true
        cleanup()
        reject(new DsyncError(ExitCode.network, 'sync.noMetadata', {
          infohash: infoHash, tried: [...swarm.failures].map(([p, why]) => `${p} (${why})`).join(', ') || 'no peers',
        }))
      }
    }
    const timer = setInterval(check, 500)
    const cleanup = () => {
      clearInterval(timer)
      swarm.off('peer', attempt)
    }
    swarm.on('peer', attempt)
    for (const p of swarm.connected) attempt(p)
    check()
  })
}

/** data.dsync is the torrent's first file: fetched into memory, verified piece by piece. */
async function fetchManifest(swarm: Swarm, map: PieceMap & { infoHash: string }, hashes: Buffer, opts: PullOptions): Promise<Buffer> {
  const spans = fileSpans(map, 0)
  const out = Buffer.alloc(map.files[0].length)
  const d = new Downloader({ pieces: spans, hashes, onPiece: (span, data) => data.copy(out, span.fileOffset) })
  const onPeer = (peer: PeerConnection) => { peer.ready().then(() => d.addPeer(peer), (err: Error) => peer.close(err.message)) }
  swarm.on('peer', onPeer)
  for (const p of swarm.connected) onPeer(p)
  opts.onProgress?.({ phase: 'manifest', bytesDone: 0, bytesTotal: out.length, filesDone: 0, filesTotal: 1, peers: swarm.connected.size })
  try {
    await watchDownload(d, { swarm, stallMs: STALL_MS, infoHash: map.infoHash, describe: () => MANIFEST_TORRENT_PATH })
  } finally {
    swarm.off('peer', onPeer)
  }
  return out
}

function parseUpstreamManifest(bytes: Buffer, from: string): Manifest {
  return parseManifest(bytes, `${from} data.dsync`)
}

function tryParse(bytes: Buffer, file: string): Manifest | undefined {
  try {
    return parseManifest(bytes, file)
  } catch {
    return undefined // a damaged local record only costs re-hashing the files it described
  }
}

function guardDeletes(plan: Plan, opts: PullOptions): void {
  const limit = opts.deleteLimit ?? SETTINGS.deleteLimit.default
  const count = plan.deletes.length + plan.displaced.length
  if (opts.force || count <= GUARD_MIN_ENTRIES || plan.localEntries === 0) return
  const percent = (count / plan.localEntries) * 100
  if (percent > limit) {
    throw new DsyncError(ExitCode.failed, 'sync.massDelete', { dest: opts.dest, count, total: plan.localEntries, percent: percent.toFixed(0), limit })
  }
}

function isEmpty(p: Plan): boolean {
  return p.mkdirs.length + p.place.length + p.touch.length + p.links.length + p.conflicts.length + p.deletes.length + p.dirMeta.length === 0
}

function describe(p: Plan): { added: string[]; changed: string[]; removed: string[] } {
  return { added: p.added, changed: p.changed, removed: [...p.deletes, ...p.displaced].map(e => e.path) }
}

function finish(ctx: PullContext, r: PullResult): PullResult {
  r.seconds = (Date.now() - ctx.started) / 1000
  r.metadataBytes = ctx.resolved.reduce((sum, s) => sum + s.httpBytes, 0) + (ctx.extraHttpBytes ?? 0)
  return r
}

function readOrUndefined(file: string): Buffer | undefined {
  try {
    return readFileSync(file)
  } catch {
    return undefined
  }
}

function unique<T>(xs: T[]): T[] {
  return [...new Set(xs)]
}

