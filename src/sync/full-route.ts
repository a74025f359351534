import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fsError } from '../errors.js'
import { DSYNC_DIR } from '../manifest/paths.js'
import type { Swarm } from '../swarm/swarm.js'
import { magnetLink } from '../torrent/build.js'
import { writeFileAtomic } from '../util/atomic-write.js'
import { collectNow } from '../util/release-memory.js'
import { deltaHosts, offerDeltas } from './delta-offer.js'
import { executePlan } from './execute.js'
import { FetchList } from './fetch-list.js'
import { manifestStage, torrentStage, type ManifestStage, type TorrentStage } from './metadata.js'
import { openSwarm } from './open-swarm.js'
import { dropShards, keepShards, storeShards, transferFromShards, type ContentFile } from './shards.js'
import { transferFiles } from './transfer.js'
import type { PullContext, PullResult, Route } from './types.js'

// The full route (stage 2 from the repository torrent, then executePlan): used when the host
// has no signed record, DEST is not on its delta chain, or DEST is empty (a bootstrap).

/** Below this many bytes written out before the plan, V8's own collections are soon enough. */
const RELEASE_MIN_BYTES = 32 << 20

/** The route every source supports: the repository torrent, then data.dsync as its first file. */
export async function pullFull(ctx: PullContext): Promise<PullResult> {
  const infoHash = ctx.resolved[0].infoHash
  // Over HTTP first when a host offers it: a refused torrent then leaves no peer dialled.
  const withTorrent = ctx.resolved.find(r => r.infoHash === infoHash && (r.torrent || r.fetchTorrent))
  const fromHost = withTorrent?.torrent ?? await withTorrent?.fetchTorrent?.()
  const session = { net: openSwarm(ctx, infoHash) }
  try {
    const torrent = await torrentStage(ctx, session, fromHost)
    // The stage is not kept in a local here: the route drops data.dsync's bytes (parkManifest).
    return await executePlan(ctx, fullRoute(ctx, session.net.swarm, torrent, await manifestStage(ctx, session.net.swarm, torrent)))
  } finally {
    session.net.stop()
  }
}

/** The full route's part in executePlan: pieces from the repository torrent's swarm; the torrent and magnet link committed. */
function fullRoute(ctx: PullContext, swarm: Swarm, { torrent, info }: TorrentStage, stage: ManifestStage): Route {
  const { opts } = ctx
  // Not the whole stage: its data.dsync bytes are to go once parked (route.manifestBytes alone holds them).
  const m = { map: stage.map, files: stage.files, shards: stage.shards }
  const indexByPath = new Map(m.map.files.map((f, i) => [f.path, i]))
  let newShardFiles: string[] = []
  const route: Route = {
    repo: info.name, infoHash: info.infoHash, manifest: stage.manifest, manifestBytes: stage.manifestBytes,
    previous: stage.previous, sameGeneration: stage.sameGeneration, route: 'full',
    // data.dsync's bytes (unless DEST holds them already) and the shard torrents go to disk
    // before the plan. A run refused before its fetch (no room, the delete guard) removes the
    // shard torrents it wrote (`abandon`); from the fetch on they stay for the next run.
    beforePlan: () => {
      let dropped = 0
      for (const s of m.shards ?? []) dropped += s.torrent?.length ?? 0
      if (!route.sameGeneration) {
        dropped += route.manifestBytes?.length ?? 0
        parkManifest(route, join(opts.dest, DSYNC_DIR, 'staging'))
      }
      // A sharded repository's files come from the shards' swarms: the index's peers go now,
      // and with them the downloaders attached to them, which still hold data.dsync's bytes.
      if (m.shards) {
        swarm.close()
        newShardFiles = storeShards(m.files, m.shards)
      }
      // What went to disk leaves memory now, not at V8's next full collection (after the plan).
      if (dropped >= RELEASE_MIN_BYTES) collectNow()
    },
    abandon: () => {
      for (const file of newShardFiles) rmSync(file, { force: true })
    },
    fetch: async (items, staging) => {
      parkManifest(route, staging.dir)
      newShardFiles = []
      if (m.shards) {
        swarm.close()
        storeShards(m.files, m.shards)
        // A shard's file is fetched when it is the entry the plan fetches its content for
        // (shards hold data.dsync's own entries): no map of a million paths to hex names.
        const wanted = (f: ContentFile) => {
          const first = items instanceof FetchList ? items.entryOf(f.sha256!) : items.get(f.sha256!.toString('hex'))
          return first === f ? f.sha256!.toString('hex') : undefined
        }
        return transferFromShards({
          shards: m.shards, staging, wanted, dir: m.files.shards,
          open: ih => openSwarm(ctx, ih, info.trackers), onWarning: opts.onWarning, onProgress: p => opts.onProgress?.({ ...p, phase: 'files' }),
        })
      }
      const toFetch = new Map<number, string>()
      for (const [hex, entry] of items) toFetch.set(indexByPath.get(entry.path)!, hex)
      const transfer = await transferFiles({
        swarm, map: m.map, hashes: info.pieces, staging, files: toFetch, onWarning: opts.onWarning, infoHash: info.infoHash,
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
 * While the files are fetched and applied (minutes, at 1M files), data.dsync waits on disk in
 * staging, not in memory (153 MB at 1M files); the commit renames it into place. It is
 * fsync'ed as the commit's own write would be; a killed run's copy goes with staging's
 * other leftovers (Staging.prune drops every name at its top).
 */
function parkManifest(route: Route, stagingDir: string): void {
  if (!route.manifestBytes) return
  try {
    mkdirSync(stagingDir, { recursive: true })
  } catch (err) {
    throw fsError(err, stagingDir, 'write')
  }
  const file = join(stagingDir, 'data.dsync.next')
  writeFileAtomic(file, route.manifestBytes)
  route.manifestFile = file
  route.manifestBytes = undefined
}
