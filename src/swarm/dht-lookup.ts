import type { PeerAddress } from './address.js'
import { Dht } from '../shared/dht.js'
import { usable } from './pex.js'

/** A lookup collects peers for this long, then the next one starts after the pause. */
const LOOKUP_MS = 10_000
const PAUSE_MS = 20_000

export interface DhtLookup {
  stop(): void
}

/**
 * BEP 5 in the client (`dht=true`, `--dht`): looks the infohash up in the DHT, where hosts with
 * dht=true announce, and hands each peer found to `onPeer`, again every half minute while
 * the transfer runs (hosts announce every 15 minutes; a new one shows up on the next round).
 * `bootstrap` names the nodes to start from (xync.conf `dht-bootstrap=`); none given means
 * bittorrent-dht's public ones.
 */
export function startDhtLookup(
  infoHash: string, opts: { bootstrap?: string[]; localAddress?: string },
  onPeer: (addr: PeerAddress) => void, onWarning?: (message: string) => void,
): DhtLookup {
  let stopped = false
  let dht: Dht | undefined
  let timer: NodeJS.Timeout | undefined
  const round = async () => {
    if (stopped || !dht) return
    const peers = await dht.peers(infoHash, LOOKUP_MS, 50)
    for (const p of peers) if (!stopped && usable(p)) onPeer(p)
    if (!stopped) timer = setTimeout(() => void round(), PAUSE_MS)
    timer?.unref()
  }
  void (async () => {
    try {
      dht = await Dht.open({ bootstrap: opts.bootstrap, address: opts.localAddress })
      if (stopped) return void dht.close()
      await dht.ready()
      await round()
    } catch (err) {
      onWarning?.(`dht: ${(err as Error).message}`)
    }
  })()
  return {
    stop() {
      stopped = true
      clearTimeout(timer)
      void dht?.close()
    },
  }
}
