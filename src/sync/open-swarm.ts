import { CLIENT_ANNOUNCE_PORT, SETTINGS } from '../config/defaults.js'
import { t } from '../i18n/index.js'
import { makePeerId } from '../shared/peer-id.js'
import { Swarm } from '../swarm/swarm.js'
import { announceToTrackers } from '../swarm/trackers.js'
import { startDhtLookup } from '../swarm/dht-lookup.js'
import type { PullContext } from './types.js'

/** How long a sync with trackers and no peer yet waits for the trackers to name one. */
const TRACKER_WAIT_MS = 15_000

/** A swarm and the tracker announcer (and DHT lookup) feeding it; stop() ends them all. */
export interface SwarmSession {
  infoHash: string
  swarm: Swarm
  stop: () => void
}

/**
 * A swarm for one infohash with every known host added and the trackers asked: the one the
 * resolve stage opened ahead (`ctx.swarmAhead`, a bootstrap's hosts connecting while the
 * .torrent downloads and is parsed) when it is for this infohash, else a new one.
 */
export function openSwarm(ctx: PullContext, infoHash: string, torrentTrackers: string[] = []): SwarmSession {
  const ahead = ctx.swarmAhead
  if (ahead?.infoHash === infoHash && torrentTrackers.length === 0) {
    ctx.swarmAhead = undefined
    return ahead
  }
  return newSwarm(ctx, infoHash, torrentTrackers)
}

function newSwarm(ctx: PullContext, infoHash: string, torrentTrackers: string[]): SwarmSession {
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
  const announcer = announceToTrackers(infoHash, makePeerId(), trackers, CLIENT_ANNOUNCE_PORT, a => swarm.add(a), opts.onWarning, opts.localAddress)
  if (trackers.length > 0) swarm.expectPeersFor(TRACKER_WAIT_MS)
  const lookup = opts.dht ? startDhtLookup(infoHash, { bootstrap: opts.dhtBootstrap, localAddress: opts.localAddress }, a => swarm.add(a), opts.onWarning) : undefined
  if (lookup) swarm.expectPeersFor(TRACKER_WAIT_MS)
  return { infoHash, swarm, stop: () => { announcer.stop(); lookup?.stop(); swarm.close() } }
}

function unique<T>(xs: T[]): T[] {
  return [...new Set(xs)]
}
