import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { setImmediate as nextTurn } from 'node:timers/promises'
import type { ManifestEntry } from '../manifest/entry.js'
import { DSYNC_DIR } from '../manifest/paths.js'
import { sameEntry } from '../manifest/slab-entry.js'
import type { Swarm } from '../swarm/swarm.js'
import { magnetLink } from '../torrent/build.js'
import { writeFileAtomic } from '../util/atomic-write.js'
import { boundHeapGrowth, boundHeapGrowthAtLeast, collectNow, RELEASE_MIN_BYTES, unboundHeapGrowth } from '../util/release-memory.js'
import { deltaHosts, offerDeltas } from './delta-offer.js'
import { executePlan, lockDest } from './execute.js'
import { FetchList } from './fetch-list.js'
import { manifestStage, parkManifest, torrentStage, type ManifestStage, type MetadataPark, type TorrentStage } from './metadata.js'
import { openSwarm } from './open-swarm.js'
import { traceMark } from '../swarm/trace.js'
import { dropShards, keepShards, storeShards, transferFromShards, type ClientShard, type ContentFile } from './shards.js'
import { tightStageBuffers } from './stage-writer.js'
import { transferFiles } from './transfer.js'
import type { Staging } from './staging.js'
import type { PullContext, PullResult, Route } from './types.js'

// The full route (stage 2 from the repository torrent, then executePlan): used when the host
// has no signed record, DEST is not on its delta chain, or DEST is empty (a bootstrap).

/** From this many entries on, a full collection before the plan and before the transfer costs less than the garbage it frees. */
const LARGE_LIST = 100_000

/** For such a list, V8's old generation may grow by this percentage of its live size between full collections (release-memory.ts). */
const HEAP_GROWTH_PERCENT = 20
/**
 * From this many entries on, by this one: at 1M files ~230 MB are live through the transfer, and
 * 20% of it (~45 MB of dead objects before a collection) was part of the bootstrap's peak, while
 * a full collection is rare there (docs/SCALE.md). Below, 10% of a smaller heap would mean many
 * more collections for few MB.
 */
const HUGE_LIST = 500_000
/**
 * Below HUGE_LIST, the old generation may grow by at least this much between full collections
 * (release-memory.ts's boundHeapGrowthAtLeast). At 200k files ~20-30 MB are live through the
 * transfer; 20% of it let a full collection come after every ~4 MB promoted: 60 of them (1.0-1.2
 * s of the main thread) in a bootstrap. With 32 MB: 13-14, for ~20 MB more peak RSS (h12c23,
 * docs/ARCHITECTURE.md). From ~160 MB live on, 20% is more than this and holds alone.
 */
const HEAP_GROWTH_FLOOR = 32 << 20
const HUGE_HEAP_GROWTH_PERCENT = 10

/**
 * The route every source supports: the repository torrent, then data.dsync as its first file.
 * DEST's lock is taken once the torrent, data.dsync and the shard list passed the signed
 * record's checks (a run killed or refused before that leaves DEST as it was): from there
 * data.dsync and each shard torrent go to disk as soon as they are checked, and the run never
 * holds them all at once (docs/SCALE.md, "Bootstrap memory").
 */
export async function pullFull(ctx: PullContext): Promise<PullResult> {
  const infoHash = ctx.resolved[0].infoHash
  // Over HTTP first when a host offers it. A bootstrap's swarm is open already (the resolve
  // stage dialled the hosts meanwhile); an update's is opened only once the torrent is checked.
  const withTorrent = ctx.resolved.find(r => r.infoHash === infoHash && (r.torrent || r.fetchTorrent))
  const fromHost = withTorrent?.torrent ?? await withTorrent?.fetchTorrent?.()
  traceMark('torrent-fetched')
  const session = { net: openSwarm(ctx, infoHash) }
  /** Whether this pull asked for the tight stage bounds (stage-writer.ts counts the pulls that did). */
  const tight = { on: false }
  let park: MetadataPark | undefined
  let lock: { release(): void } | undefined
  try {
    const torrent = await torrentStage(ctx, session, fromHost)
    if (!ctx.opts.dryRun) {
      const hold = () => { if (!lock && !ctx.opts.lockHeld) lock = lockDest(ctx.opts.dest) }
      park = { stagingDir: join(ctx.opts.dest, DSYNC_DIR, 'staging'), written: [], hold }
    }
    const locked = park ? { ...ctx, opts: { ...ctx.opts, lockHeld: true } } : ctx
    // The stage is not kept in a local here: the route drops data.dsync's bytes (parkManifest).
    return await executePlan(locked, fullRoute(locked, session.net.swarm, torrent, await manifestStage(locked, session.net.swarm, torrent, park), tight, park))
  } catch (err) {
    // Refused or failed before executePlan took over: what the metadata stage wrote goes.
    if (park?.manifestFile) rmSync(park.manifestFile, { force: true })
    for (const file of park?.written ?? []) rmSync(file, { force: true })
    throw err
  } finally {
    unboundHeapGrowth()
    if (tight.on) tightStageBuffers(false)
    park?.early?.stop()
    lock?.release()
    session.net.stop()
  }
}

/** The full route's part in executePlan: pieces from the repository torrent's swarm; the torrent and magnet link committed. */
function fullRoute(ctx: PullContext, swarm: Swarm, { torrent, info }: TorrentStage, stage: ManifestStage, tight: { on: boolean }, park?: MetadataPark): Route {
  const { opts } = ctx
  // Not the whole stage: its data.dsync bytes are to go once parked (route.manifestBytes alone holds them).
  const m = { map: stage.map, files: stage.files, shards: stage.shards }
  const indexByPath = new Map(m.map.files.map((f, i) => [f.path, i]))
  // The shard torrents this run wrote (as they arrived, or before the plan): a run refused before its fetch removes them.
  const newShardFiles: string[] = park?.written ?? []
  // A number, not `stage`: every closure of this function shares one context, so a closure
  // reading `stage` kept the whole list alive through the transfer (its array of 1.18M entries,
  // ~10 MiB at 1M files) after executePlan had dropped it (docs/SCALE.md, h11m17).
  const entryCount = stage.manifest.entries.length
  const largeList = entryCount >= LARGE_LIST
  const route: Route = {
    repo: info.name, infoHash: info.infoHash, manifest: stage.manifest, manifestBytes: stage.manifestBytes, manifestFile: stage.manifestFile,
    previous: stage.previous, sameGeneration: stage.sameGeneration, route: 'full',
    // data.dsync's bytes (unless DEST holds them already) and the shard torrents go to disk
    // before the plan. A run refused before its fetch (no room, the delete guard) removes the
    // shard torrents it wrote (`abandon`); from the fetch on they stay for the next run.
    beforePlan: () => {
      let dropped = 0
      for (const s of m.shards ?? []) dropped += s.torrent?.length ?? 0
      if (!route.sameGeneration) {
        dropped += route.manifestBytes?.length ?? 0
        parkBytes(route, join(opts.dest, DSYNC_DIR, 'staging'))
      }
      // A sharded repository's files come from the shards' swarms: the index's peers go now,
      // and with them the downloaders attached to them, which still hold data.dsync's bytes.
      if (m.shards) {
        swarm.close()
        newShardFiles.push(...storeShards(m.files, m.shards))
      }
      boundForPlan(entryCount, dropped, tight)
    },
    abandon: () => {
      for (const file of newShardFiles) rmSync(file, { force: true })
    },
    fetch: async (items, staging) => {
      // The early fetch's turn (execute.ts) between the fetch stage's set-up and the transfer's.
      if (park?.early) await nextTurn()
      parkBytes(route, staging.dir)
      // The plan's own garbage goes before the transfer's buffers and workers come.
      if (largeList) collectNow()
      newShardFiles.length = 0
      if (m.shards) {
        swarm.close()
        storeShards(m.files, m.shards)
        return fetchFromShards(ctx, info.trackers, { shards: m.shards, dir: m.files.shards }, items, staging)
      }
      const toFetch = new Map<number, string>()
      for (const [hex, entry] of items) toFetch.set(indexByPath.get(entry.path)!, hex)
      // The transfer feeds the early fetch's downloader its peers from here.
      park?.early?.detach()
      const transfer = await transferFiles({
        swarm, map: m.map, hashes: info.pieces, staging, files: toFetch, onWarning: opts.onWarning, infoHash: info.infoHash, early: park?.early?.downloader,
        onProgress: p => opts.onProgress?.({ ...p, phase: 'files' }),
      })
      swarm.close()
      return transfer
    },
    // A DEST that came by the full route offers the record's deltas too, once re-served.
    beforeCommit: ctx.record && ctx.resolved[0].baseUrl ? () => offerDeltas(ctx, ctx.record!, deltaHosts(ctx, ctx.resolved[0].baseUrl!)) : undefined,
    commit: () => {
      if (m.shards) keepShards(m.files, m.shards)
      else dropShards(m.files)
      writeFileAtomic(m.files.torrent, torrent)
      writeFileAtomic(m.files.magnet, magnetLink(info.infoHash, info.name, info.trackers) + '\n')
    },
  }
  return route
}

/**
 * What went to disk before the plan leaves memory now, not at V8's next full collection (after
 * the plan); so does a long list's parse and shard walk garbage (at 1M files the plan was built
 * on top of ~130 MB of it: the run's peak, h11b7's 1M log). From here to the commit the long
 * list is live: the garbage beside it is bounded too, and for the longest lists the stage
 * lanes' spare batches (stage-writer.ts; `tight` records that this pull asked for them).
 */
function boundForPlan(entries: number, dropped: number, tight: { on: boolean }): void {
  const largeList = entries >= LARGE_LIST
  if (largeList) boundHeapGrowth(entries >= HUGE_LIST ? HUGE_HEAP_GROWTH_PERCENT : HEAP_GROWTH_PERCENT)
  if (entries >= HUGE_LIST && !tight.on) {
    tight.on = true
    tightStageBuffers(true)
  }
  if (dropped >= RELEASE_MIN_BYTES || largeList) collectNow()
  // The live heap is known now; the transfer's collection (before its buffers come) sets its limit from this.
  if (largeList && entries < HUGE_LIST) boundHeapGrowthAtLeast(HEAP_GROWTH_PERCENT, HEAP_GROWTH_FLOOR)
}

/**
 * A sharded repository's files, from the shards' swarms. A shard's file is fetched when it is
 * the entry the plan fetches its content for (shards hold data.dsync's own entries): no map of
 * a million paths to hex names.
 */
function fetchFromShards(ctx: PullContext, trackers: string[], m: { shards: ClientShard[]; dir: string }, items: ReadonlyMap<string, ManifestEntry>, staging: Staging): ReturnType<Route['fetch']> {
  // A FetchList numbers its contents: the plan's own (a bootstrap's, and any pull that had
  // nothing staged) gives staging the numbers it marks, so the transfer looks no name up.
  const list = items instanceof FetchList ? items : undefined
  const wanted = list
    ? (f: ContentFile) => {
      const id = list.idOf(f.sha256!)
      return id >= 0 && list.isFirstAt(id, f) ? id : -1
    }
    : (f: ContentFile) => (sameEntry(items.get(f.sha256!.toString('hex')), f) ? 0 : -1)
  return transferFromShards({
    shards: m.shards, staging, wanted, metaIds: staging.wantsMetaBy(list), dir: m.dir,
    open: ih => openSwarm(ctx, ih, trackers), onWarning: ctx.opts.onWarning, onProgress: p => ctx.opts.onProgress?.({ ...p, phase: 'files' }),
  })
}

/** Parks data.dsync's bytes under staging (see metadata.ts's parkManifest) when the route still holds them. */
function parkBytes(route: Route, stagingDir: string): void {
  if (!route.manifestBytes) return
  route.manifestFile = parkManifest(route.manifestBytes, stagingDir)
  route.manifestBytes = undefined
}
