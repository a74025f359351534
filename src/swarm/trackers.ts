import Client from 'bittorrent-tracker'
import { parseAddress, type PeerAddress } from './peer.js'

export interface TrackerAnnouncer {
  stop(): void
}

/**
 * Asks the torrent's http/udp trackers for peers and feeds them to `onPeer`. WebSocket
 * trackers are skipped: they broker WebRTC peers, which dsync does not speak.
 */
export function announceToTrackers(
  infoHash: string, peerId: string, trackers: string[], port: number,
  onPeer: (addr: PeerAddress) => void, onWarning?: (message: string) => void,
): TrackerAnnouncer {
  const usable = trackers.filter(t => /^(https?|udp):\/\//.test(t))
  if (usable.length === 0) return { stop() {} }
  const client = new Client({ infoHash, peerId, announce: usable, port })
  client.on('peer', peer => {
    if (typeof peer !== 'string') return
    const addr = parseAddress(peer)
    if (addr) onPeer(addr)
  })
  client.on('warning', err => onWarning?.(`tracker: ${err.message}`))
  client.on('error', err => onWarning?.(`tracker: ${err.message}`))
  client.start()
  return {
    stop() {
      client.stop()
      client.destroy()
    },
  }
}
