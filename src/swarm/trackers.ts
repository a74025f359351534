import { Announcer } from '../shared/announce.js'
import type { PeerAddress } from './peer.js'

export interface TrackerAnnouncer {
  stop(): void
}

/** Peers asked of each tracker per announce: a pull needs a handful of hosts, not the swarm. */
const NUMWANT = 50
/**
 * `left` in a leecher's announce. The size is not known before the metadata, and trackers only
 * need it non-zero to count us as a leecher and send peers.
 */
const LEFT_UNKNOWN = 1

/**
 * Asks the torrent's http/udp trackers for peers and feeds them to `onPeer`, announcing from
 * `localAddress` (`--bind`): a private tracker may allow only that address. WebSocket trackers
 * are skipped: they broker WebRTC peers, which dsync does not speak.
 */
export function announceToTrackers(
  infoHash: string, peerId: string, trackers: string[], port: number,
  onPeer: (addr: PeerAddress) => void, onWarning?: (message: string) => void, localAddress?: string,
): TrackerAnnouncer {
  const announcer = new Announcer({
    infoHash, peerId: Buffer.from(peerId, 'hex'), port, localAddress, uploaded: () => 0,
    left: LEFT_UNKNOWN, numwant: NUMWANT, detachStop: true,
    onPeers: peers => { for (const p of peers) onPeer(p) },
  }, trackers, (tracker, result) => { if (result !== 'ok') onWarning?.(`tracker: ${tracker}: ${result}`) })
  announcer.start()
  return { stop: () => { void announcer.stop() } }
}
