import type { Swarm } from '../swarm/swarm.js'
import { magnetLink } from '../torrent/build.js'
import { writeFileAtomic } from '../util/atomic-write.js'
import { deltaHosts, offerDeltas } from './delta-offer.js'
import { pullViaDeltas } from './delta-route.js'
import { executePlan } from './execute.js'
import { manifestStage, torrentStage, type ManifestStage, type TorrentStage } from './metadata.js'
import { openSwarm } from './open-swarm.js'
import { resolveStage } from './resolve.js'
import { dropShards, keepShards, storeShards, transferFromShards } from './shards.js'
import { transferFiles } from './transfer.js'
import type { PullContext, PullOptions, PullResult, Route } from './types.js'

export type { PullContext, PullOptions, PullResult, Route } from './types.js'

// The client, as a loop over stages (docs/ARCHITECTURE.md has the map):
//   1 resolve (resolve.ts)  2 metadata (metadata.ts, or delta-route.ts)  then execute.ts runs
//   3 plan (plan.ts, deletes.ts)  4 stage/fetch (fetch-stage.ts)  5 apply (apply.ts, deletes.ts)
//   6 commit (commit.ts) under DEST's lock, the same for both routes.

/**
 * Brings DEST to the generation SOURCE names, pulling from every host at once:
 * signed record (when the host has one) → the new data.dsync, rebuilt from DEST's through the
 * delta chain, or else from the torrent (verified by it) → plan against DEST → fetch only what
 * is missing into staging (verified piece by piece, then by SHA-256) → apply in a safe order
 * → DEST's data.dsync last, as the commit record.
 */
export async function pull(opts: PullOptions): Promise<PullResult> {
  const ctx = await resolveStage(opts)
  const first = ctx.resolved[0]
  if (ctx.record && first.baseUrl) {
    const viaDeltas = await pullViaDeltas(ctx, ctx.record, first.baseUrl)
    if (viaDeltas) return viaDeltas
  }
  return pullFull(ctx)
}

/** The route every source supports: the repository torrent, then data.dsync as its first file. */
async function pullFull(ctx: PullContext): Promise<PullResult> {
  const infoHash = ctx.resolved[0].infoHash
  // Over HTTP first when a host offers it: a refused torrent then leaves no peer dialled.
  const withTorrent = ctx.resolved.find(r => r.infoHash === infoHash && (r.torrent || r.fetchTorrent))
  const fromHost = withTorrent?.torrent ?? await withTorrent?.fetchTorrent?.()
  const session = { net: openSwarm(ctx, infoHash) }
  try {
    const torrent = await torrentStage(ctx, session, fromHost)
    const manifest = await manifestStage(ctx, session.net.swarm, torrent)
    return await executePlan(ctx, fullRoute(ctx, session.net.swarm, torrent, manifest))
  } finally {
    session.net.stop()
  }
}

/** The full route's part in executePlan: pieces from the repository torrent's swarm; the torrent and magnet link committed. */
function fullRoute(ctx: PullContext, swarm: Swarm, { torrent, info }: TorrentStage, m: ManifestStage): Route {
  const { opts } = ctx
  const indexByPath = new Map(m.map.files.map((f, i) => [f.path, i]))
  return {
    repo: info.name, infoHash: info.infoHash, manifest: m.manifest, manifestBytes: m.manifestBytes,
    previous: m.previous, sameGeneration: m.sameGeneration, route: 'full',
    fetch: async (items, staging) => {
      if (m.shards) {
        swarm.close()
        storeShards(m.files, m.shards)
        // Filled in a loop: `new Map(items.map(...))` makes an array of a pair per file first.
        const wanted = new Map<string, string>()
        for (const [hex, entry] of items) wanted.set(entry.path, hex)
        return transferFromShards({
          shards: m.shards, staging, wanted,
          open: ih => openSwarm(ctx, ih, info.trackers), onWarning: opts.onWarning, onProgress: p => opts.onProgress?.({ ...p, phase: 'files' }),
        })
      }
      const toFetch = new Map(items.map(([hex, entry]) => [indexByPath.get(entry.path)!, hex]))
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
}
