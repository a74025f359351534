import type { Swarm } from '../swarm/swarm.js'
import { magnetLink } from '../torrent/build.js'
import { writeFileAtomic } from '../util/atomic-write.js'
import { deltaHosts, offerDeltas } from './delta-offer.js'
import { executePlan } from './execute.js'
import { manifestStage, torrentStage, type ManifestStage, type TorrentStage } from './metadata.js'
import { openSwarm } from './open-swarm.js'
import { dropShards, keepShards, storeShards, transferFromShards, type ContentFile } from './shards.js'
import { transferFiles } from './transfer.js'
import type { PullContext, PullResult, Route } from './types.js'

// The full route (stage 2 from the repository torrent, then executePlan): used when the host
// has no signed record, DEST is not on its delta chain, or DEST is empty (a bootstrap).

/** The route every source supports: the repository torrent, then data.dsync as its first file. */
export async function pullFull(ctx: PullContext): Promise<PullResult> {
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
        // A shard's file is fetched when it is the entry the plan fetches its content for
        // (shards hold data.dsync's own entries): no map of a million paths to hex names.
        const wanted = (f: ContentFile) => {
          const hex = f.sha256!.toString('hex')
          return items.get(hex) === f ? hex : undefined
        }
        return transferFromShards({
          shards: m.shards, staging, wanted,
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
}
