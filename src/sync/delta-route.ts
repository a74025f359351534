import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { STALL_MS } from '../config/defaults.js'
import { DsyncError, ExitCode, fsError } from '../errors.js'
import { makeDelta, parseDelta, pathKey, type Delta } from '../generation/delta.js'
import { deltaFiles, matchTorrentToDelta } from '../generation/delta-torrent.js'
import { deltaFile, generationFiles } from '../generation/files.js'
import type { DeltaRef, GenerationRecord } from '../generation/record.js'
import { t } from '../i18n/index.js'
import type { ManifestEntry } from '../manifest/entry.js'
import { parseManifest, type Manifest } from '../manifest/format.js'
import { indexLines, type LineTable } from '../manifest/manifest-lines.js'
import { repoFiles, type RepoFiles } from '../manifest/paths.js'
import { applyDeltas, bufferReader, fileReader, type AppliedToFile } from '../generation/delta-apply.js'
import { fileSha256 } from '../util/file-sha256.js'
import { pieceMap } from '../torrent/piece-map.js'
import { readTorrentInfo, type TorrentInfo } from '../torrent/read.js'
import { writeFileAtomic } from '../util/atomic-write.js'
import { DeltaUnavailable, findChain, followChain, sourcesFor } from './delta-chain.js'
import { deltaHosts, fetchShardTorrents, firstAnswer, offerDeltas } from './delta-offer.js'
import { readOrUndefined, tryParse } from './metadata.js'
import { layoutOf } from './torrent-check.js'
import { openSwarm } from './open-swarm.js'
import { executePlan, walkPlan } from './execute.js'
import { listEntry, planFromDeltas, type DeltaPlanInput } from './delta-plan.js'
import { fileLines, headerValue, tableLines, type ListLines } from './list-lines.js'
import type { Plan } from './plan.js'
import type { PullContext, PullResult } from './types.js'
import { lastApplied, mustMatch } from './record-gate.js'
import { dropStaleTorrent, rebuildRepoTorrent, type RebuildOptions } from './rebuild-torrent.js'
import { rebuildIndex, rebuildShardTorrents } from './rebuild-shards.js'
import { dropShards } from './shards.js'
import { magnetLink } from '../torrent/build.js'
import { unchanged } from './no-change.js'
import type { Staging } from './staging.js'
import { transferFiles } from './transfer.js'
import { dropPreviousList, keepPreviousList, previousListPath, torrentsCurrent } from './unfinished-commit.js'
import { acquireLock } from '../util/lock.js'



/**
 * The update route whose bytes follow the change (docs/SCALE.md): DEST's data.dsync plus the
 * deltas h+1..g give the new one, checked against the record; each changed content is fetched
 * once from the newest delta torrent that carries it. Undefined when DEST is not on the chain
 * (the caller falls back to the full generation; the user is told).
 */
export async function pullViaDeltas(ctx: PullContext, record: GenerationRecord, baseUrl: string): Promise<PullResult | undefined> {
  const { opts } = ctx
  const files = repoFiles(opts.dest, record.repo)
  // Hashed as a stream: the no-change check and the update never hold DEST's list whole.
  const previousSha = fileSha256(files.manifest)
  if (!previousSha) return undefined // a bootstrap: the full generation is the only route
  const chain = findChain(record, previousSha)
  if (typeof chain === 'string') {
    opts.onWarning?.(t('generation.offChain', { reason: chain }))
    return undefined
  }
  if (chain.length === 0 && !opts.dryRun && record.bytes.equals(readOrUndefined(generationFiles(opts.dest).record) ?? Buffer.alloc(0))) {
    // DEST applied this record; a run killed at apply:commit may not have written its torrents.
    if (!torrentsCurrent(files, record)) await finishCommit(ctx, record, readFileSync(files.manifest))
    if (!opts.rescan) return { ...unchanged(ctx, record), ...(ctx.torrents ? { torrents: ctx.torrents } : {}) }
  }
  const followed = chain.length === 0 ? sameList(files) : await followDeltas(ctx, chain, files, previousSha, record, baseUrl)
  if (!followed) return undefined
  try {
    return await deltaRoute(ctx, { record, baseUrl, chain, previousSha, files, ...followed })
  } catch (err) {
    if (!(err instanceof DeltaUnavailable)) throw err
    opts.onWarning?.(t('generation.offChain', { reason: err.message }))
    return undefined
  } finally {
    // Renamed into place by the commit; anything else (a refusal, a dry run, the fallback) leaves no copy.
    if (followed.applied) rmSync(opts.dryRun ? dirname(followed.applied.file) : followed.applied.file, { force: true, recursive: true })
  }
}

/** The deltas followed (none: DEST is at the record's list already) and what the plan needs of DEST's list. */
interface Followed {
  deltas: Delta[]
  raw: Buffer[]
  /** The new list: DEST's own (in memory), or the one the deltas were applied into (on disk, checked). */
  manifestBytes?: Buffer
  applied?: AppliedToFile
  /** DEST's entry line at each path the deltas name (undefined: none there). */
  before: Map<string, string | undefined>
  previousEntries: number
}

function sameList(files: RepoFiles): Followed {
  const manifestBytes = readFileSync(files.manifest)
  return { deltas: [], raw: [], manifestBytes, before: new Map(), previousEntries: headerValue(tableLines(lineTable(manifestBytes, files.manifest).table), 'entries') }
}

async function deltaRoute(ctx: PullContext, r: Followed & { record: GenerationRecord; baseUrl: string; chain: DeltaRef[]; previousSha: string; files: RepoFiles }): Promise<PullResult | undefined> {
  const { manifestBytes, applied } = r
  const file = `${r.baseUrl} data.dsync (rebuilt from deltas)`
  const lines: ListLines & { close?: () => void } = applied ? fileLines(applied) : tableLines(lineTable(manifestBytes!, file).table)
  try {
    return await routeOver(ctx, r, { table: lines, file })
  } finally {
    lines.close?.()
  }
}

async function routeOver(ctx: PullContext, r: Followed & { record: GenerationRecord; baseUrl: string; chain: DeltaRef[]; previousSha: string; files: RepoFiles }, next: { table: ListLines; file: string }): Promise<PullResult | undefined> {
  const { opts } = ctx
  const { record, chain, deltas, files, manifestBytes, applied } = r
  // DEST applied the previous generation: only the paths the deltas name can differ from the
  // new list, and only those are looked at. Otherwise (or --rescan) DEST is walked whole.
  const fromDeltas = chain.length > 0 && !opts.rescan && appliedHere(opts.dest, record.repo, r.previousSha)
  let parsed: { manifest: Manifest; previous: Manifest } | undefined
  let committed = false
  // DEST's previous list is its data.dsync until the commit, then the link kept beside it.
  const nextBytes = () => manifestBytes ?? readFileSync(committed ? files.manifest : applied!.file)
  const parse = () => (parsed ??= parseBoth(readFileSync(committed ? previousListPath(files) : files.manifest), nextBytes(), files.manifest, next.file))
  // Parsed after the deltas are in: at 200k entries a parse takes seconds, and the host's
  // HTTP connection should not sit idle meanwhile.
  if (!fromDeltas && !parse()) return undefined
  // The final entries of the paths the deltas' torrents carry: what sourcesFor looks up.
  const final = new Map<string, ManifestEntry>()
  for (const d of deltas) for (const f of deltaFiles(d)) {
    const e = listEntry(next.table, f.path, next.file)
    if (e?.type === 'f') final.set(f.path, e)
  }
  return executePlan(ctx, {
    repo: record.repo, infoHash: record.torrent, manifest: parsed?.manifest, manifestBytes, manifestFile: applied?.file, previous: parsed?.previous,
    sameGeneration: chain.length === 0, route: 'deltas', deltas: chain.length,
    plan: fromDeltas ? () => deltaPlan(ctx, { dest: opts.dest, before: r.before, previousEntries: r.previousEntries, next: next.table, deltas, file: next.file }, parse, () => parseManifest(nextBytes(), next.file)) : undefined,
    fetch: (items, staging) => fetchFromDeltas(ctx, r.baseUrl, chain, deltas, items, final, staging),
    beforeCommit: async () => {
      if (chain.length > 0) keepPreviousList(files)
      keepDeltas(opts.dest, chain, deltas, r.raw)
      await offerDeltas(ctx, record, deltaHosts(ctx, r.baseUrl))
    },
    commit: () => {
      committed = true
      return chain.length > 0 ? commitTorrent(ctx, {
        dest: opts.dest, repo: record.repo, record, pieceLength: headerValue(next.table, 'piece-length'), manifest: files.manifest,
        previousList: previousListPath(files), before: r.before,
        parsed: () => {
          const both = parse()
          if (!both) throw new Error(`${previousListPath(files)} does not parse`)
          return both
        },
      }) : undefined
    },
  })
}

/** The deltas of the chain fetched, checked and applied to DEST's list (read as a stream); undefined when no host has one of them (the full route then). */
async function followDeltas(ctx: PullContext, chain: DeltaRef[], files: RepoFiles, previousSha: string, record: GenerationRecord, baseUrl: string): Promise<Followed | undefined> {
  let fetched
  let target: string | undefined
  try {
    fetched = await followChain(deltaHosts(ctx, baseUrl), chain, () => fileReader(files.manifest), previousSha, record, () => (target = mergeTarget(ctx, files)), {
      localAddress: ctx.opts.localAddress,
      beforeApply: deltas => prefetchTorrents(ctx, deltaHosts(ctx, baseUrl), chain, deltas),
    })
  } catch (err) {
    // A dry run's temporary folder goes with the refusal (followChain removes only the file).
    if (ctx.opts.dryRun && target) rmSync(dirname(target), { force: true, recursive: true })
    if (!(err instanceof DeltaUnavailable)) throw err
    ctx.opts.onWarning?.(t('generation.offChain', { reason: err.message }))
    return undefined
  }
  ctx.opts.onWarning?.(t('generation.viaDeltas', { count: chain.length, to: record.seq }))
  ctx.extraHttpBytes = (ctx.extraHttpBytes ?? 0) + fetched.bytes
  const { applied } = fetched
  return { deltas: fetched.deltas, raw: fetched.raw, applied, before: applied.before, previousEntries: applied.previousEntries }
}

/**
 * Where the deltas are applied into: under DEST's staging, as the full route parks its
 * data.dsync (the commit renames it into place; a killed run's copy goes with staging's other
 * leftovers), by a name of this run's own (DEST's lock is not taken yet). A dry run writes
 * nothing into DEST: a temporary folder, removed with the file.
 */
function mergeTarget(ctx: PullContext, files: RepoFiles): string {
  const name = `data.dsync.merged-${process.pid}-${randomBytes(4).toString('hex')}`
  const dir = ctx.opts.dryRun ? mkdtempSync(join(tmpdir(), 'dsync-diff-')) : join(files.dir, 'staging')
  try {
    mkdirSync(dir, { recursive: true })
  } catch (err) {
    throw fsError(err, dir, 'write')
  }
  return join(dir, name)
}

/** The plan from the deltas; when DEST is not as its list says where it matters, the walk (and both lists parsed) instead. */
async function deltaPlan(ctx: PullContext, input: DeltaPlanInput, parse: () => { manifest: Manifest; previous: Manifest } | undefined, nextList: () => Manifest): Promise<Plan> {
  const plan = await planFromDeltas(input)
  if (typeof plan !== 'string') {
    ctx.planned = 'deltas'
    return plan
  }
  ctx.opts.onWarning?.(t('deltaplan.walk', { reason: plan }))
  const both = parse()
  return walkPlan(ctx, { manifest: both?.manifest ?? nextList(), previous: both?.previous })
}

/** DEST's record (written with its data.dsync at its last commit) names the data.dsync DEST holds. */
function appliedHere(dest: string, repo: string, manifestSha: string): boolean {
  const last = lastApplied(dest)
  return last !== undefined && last.repo === repo && last.manifest.sha256 === manifestSha
}

/** Both lists parsed; undefined when DEST's own does not parse (the full route then). */
function parseBoth(previousBytes: Buffer, manifestBytes: Buffer, previousFile: string, file: string): { manifest: Manifest; previous: Manifest } | undefined {
  const previous = tryParse(previousBytes, previousFile)
  return previous && { previous, manifest: parseManifest(manifestBytes, file) }
}

function lineTable(bytes: Buffer, file: string): { table: LineTable; file: string } {
  const table = indexLines(bytes)
  if (typeof table === 'string') throw new DsyncError(ExitCode.badData, 'manifest.corrupt', { file, line: 1, reason: table })
  return { table, file }
}

/**
 * The repository torrent of the new generation (and a sharded one's shard torrents): rebuilt
 * locally (no bytes on the wire), else fetched from the host, only what could not be rebuilt,
 * else removed so that a host never serves a torrent of another generation.
 */
async function commitTorrent(ctx: PullContext, opts: RebuildOptions, rebuild = true): Promise<void> {
  await repositoryTorrents(ctx, opts, rebuild)
  const files = repoFiles(opts.dest, opts.repo)
  // One torrent again: shard files DEST kept (the rebuild read their piece hashes) are stale.
  if (opts.record.shards.length === 0) dropShards(files)
  // The previous list was kept for this rebuild only (a re-run after a kill before here uses it).
  dropPreviousList(files)
}

/**
 * The torrents of the generation DEST applied, when an earlier run was killed after writing
 * its data.dsync and before its torrents: rebuilt from the previous list kept for that (else
 * fetched, as a rebuild that misses the record's infohash is), under DEST's lock.
 */
async function finishCommit(ctx: PullContext, record: GenerationRecord, manifestBytes: Buffer): Promise<void> {
  const { opts } = ctx
  const files = repoFiles(opts.dest, record.repo)
  opts.onWarning?.(t('unfinished.torrents', { torrent: record.torrent }))
  const releaseLock = opts.lockHeld ? undefined : acquireLock(files.lock).release
  try {
    const previous = readOrUndefined(previousListPath(files))
    const next = tableLines(lineTable(manifestBytes, files.manifest).table)
    await commitTorrent(ctx, {
      dest: opts.dest, repo: record.repo, record, pieceLength: headerValue(next, 'piece-length'), manifest: files.manifest,
      previousList: previousListPath(files), before: previous ? changedLines(previous, manifestBytes) : new Map(),
      parsed: () => {
        const both = previous && parseBoth(previous, manifestBytes, previousListPath(files), files.manifest)
        if (!both) throw new Error(`${previousListPath(files)} does not parse`)
        return both
      },
    }, previous !== undefined)
  } finally {
    releaseLock?.()
  }
}

/** DEST's previous lines at the paths where its two lists differ (what the deltas would name). */
function changedLines(previous: Buffer, manifestBytes: Buffer): Map<string, string | undefined> {
  return applyDeltas(bufferReader(previous), [parseDelta(makeDelta(0, previous, manifestBytes))]).before
}

async function repositoryTorrents(ctx: PullContext, opts: RebuildOptions, rebuild: boolean): Promise<void> {
  const tally = (ctx.torrents ??= { rebuilt: 0, kept: 0, fetched: 0 })
  if (!rebuild) {
    // Nothing to splice from: only what the host serves.
  } else if (opts.record.shards.length === 0) {
    if (rebuildRepoTorrent(opts)) {
      tally.rebuilt++
      return
    }
  } else {
    const r = rebuildShardTorrents(opts)
    tally.rebuilt += r.rebuilt
    tally.kept += r.kept
    if (r.index) {
      tally.rebuilt++
      return
    }
    if (r.missing.length > 0) ctx.opts.onWarning?.(t('shardsync.fetchShards', { count: r.missing.length, reason: r.reason ?? t('shardsync.otherInfohash') }))
  }
  const source = ctx.resolved.find(r => r.fetchTorrent && r.infoHash === opts.record.torrent)
  try {
    if (opts.record.shards.length > 0) {
      // The shard torrents DEST still lacks come first; with them the index is rebuilt here.
      tally.fetched += await fetchShardTorrents(ctx, opts.record, repoFiles(opts.dest, opts.repo), deltaHosts(ctx, ctx.resolved[0].baseUrl!))
      if (rebuildIndex(opts)) {
        tally.rebuilt++
        return
      }
    }
    const torrent = await source?.fetchTorrent?.()
    if (torrent) {
      ctx.opts.onWarning?.(t('shardsync.fetchTorrent'))
      const info = readTorrentInfo(torrent)
      const files = repoFiles(opts.dest, opts.repo)
      writeFileAtomic(files.torrent, torrent)
      writeFileAtomic(files.magnet, magnetLink(info.infoHash, opts.repo, info.trackers) + '\n')
      tally.fetched++
      return
    }
  } catch (err) {
    ctx.opts.onWarning?.((err as Error).message)
  }
  dropStaleTorrent(opts.dest, opts.repo)
}

/** Downloads each needed content from the newest delta torrent of the chain that has it. */
async function fetchFromDeltas(
  ctx: PullContext, baseUrl: string, chain: DeltaRef[], deltas: Delta[], items: ReadonlyMap<string, ManifestEntry>,
  final: Map<string, ManifestEntry>, staging: Staging,
): Promise<{ bytesReceived: number; bytesPerPeer: Record<string, number> }> {
  const wanted = new Map(items)
  const { found, missing } = sourcesFor(deltas, wanted, final)
  if (missing.length > 0) {
    throw new DeltaUnavailable(`${missing.length} file(s) to fetch are in no delta, e.g. ${wanted.get(missing[0])!.path}`)
  }
  const byDelta = new Map<number, Map<number, string>>()
  for (const [hex, src] of found) {
    if (!byDelta.has(src.delta)) byDelta.set(src.delta, new Map())
    byDelta.get(src.delta)!.set(src.file, hex)
  }
  const out = { bytesReceived: 0, bytesPerPeer: {} as Record<string, number> }
  for (const [d, filesByIndex] of byDelta) {
    const info = await deltaTorrent(ctx, deltaHosts(ctx, baseUrl), chain[d], deltas[d])
    const map = { ...pieceMap(layoutOf(info), info.pieceLength), infoHash: info.infoHash }
    const net = openSwarm(ctx, info.infoHash, info.trackers)
    try {
      const transfer = await transferFiles({
        swarm: net.swarm, map, hashes: info.pieces, staging, files: filesByIndex, onWarning: ctx.opts.onWarning, stallMs: STALL_MS,
        infoHash: info.infoHash, onProgress: p => ctx.opts.onProgress?.({ ...p, phase: 'files' }),
      })
      out.bytesReceived += transfer.bytesReceived
      for (const [peer, n] of Object.entries(transfer.bytesPerPeer)) out.bytesPerPeer[peer] = (out.bytesPerPeer[peer] ?? 0) + n
    } finally {
      net.stop()
    }
  }
  return out
}

const fetchedTorrents = new WeakMap<Delta, Buffer>()
const torrentInfos = new WeakMap<Delta, TorrentInfo>()

/**
 * The torrents of the deltas that carry the newest line of some path, fetched before the new
 * list is written under DEST's staging: a run killed while fetching metadata leaves DEST as it
 * was (test/sync-kill.test.ts). A delta whose every file a later one names again is skipped.
 */
async function prefetchTorrents(ctx: PullContext, baseUrls: string[], chain: DeltaRef[], deltas: Delta[]): Promise<void> {
  const later = new Set<string>()
  for (let d = deltas.length - 1; d >= 0; d--) {
    const files = deltaFiles(deltas[d])
    if (chain[d].infoHash && files.some(f => !later.has(f.path))) torrentInfos.set(deltas[d], await deltaTorrent(ctx, baseUrls, chain[d], deltas[d]))
    for (const line of deltas[d].lines) later.add(pathKey(line).toString('utf8'))
  }
}

/** A delta's torrent over HTTP, checked against the record's infohash and the delta's file list. */
async function deltaTorrent(ctx: PullContext, baseUrls: string[], ref: DeltaRef, delta: Delta): Promise<TorrentInfo> {
  const known = torrentInfos.get(delta)
  if (known) return known
  const { url, bytes } = await firstAnswer(baseUrls, `deltas/${ref.seq}.torrent`, ctx.opts.localAddress)
  ctx.extraHttpBytes = (ctx.extraHttpBytes ?? 0) + bytes.length
  let info: TorrentInfo
  try {
    info = readTorrentInfo(bytes)
  } catch (err) {
    throw new DsyncError(ExitCode.badData, 'sync.badTorrent', { from: url, reason: (err as Error).message })
  }
  mustMatch(url, `delta torrent ${ref.seq}`, info.infoHash, ref.infoHash ?? '-')
  const layout = matchTorrentToDelta(info, delta, ctx.record!.repo)
  if (typeof layout === 'string') throw new DsyncError(ExitCode.badData, 'generation.mismatch', { from: url, what: `delta torrent ${ref.seq}`, reason: layout })
  fetchedTorrents.set(delta, bytes)
  return info
}

/**
 * DEST keeps the deltas it followed (and their torrents, when fetched), so a host re-serving
 * DEST offers them too; deltas the new record no longer lists are removed.
 */
function keepDeltas(dest: string, chain: DeltaRef[], deltas: Delta[], raw: Buffer[]): void {
  mkdirSync(generationFiles(dest).deltas, { recursive: true })
  chain.forEach((ref, i) => {
    writeFileAtomic(deltaFile(dest, ref.seq, 'delta'), raw[i])
    const torrent = fetchedTorrents.get(deltas[i])
    if (torrent) writeFileAtomic(deltaFile(dest, ref.seq, 'torrent'), torrent)
  })
}

