/**
 * What resolving a SOURCE gives the pull, whatever its kind (source.ts dispatches; dtp-host.ts
 * and bep46.ts resolve the two kinds that need a host): one file the resolvers share.
 */
import type { PeerAddress } from '../swarm/address.js'

/** Largest .torrent or info dict accepted (a 1M-file repository's is about 100 MB). */
export const TORRENT_CAP = 256 << 20

/** What a SOURCE argument or a dsync-url= value tells us before any peer is contacted. */
export interface ResolvedSource {
  source: string
  infoHash: string
  /** The .torrent bytes, when the source had them (a file, a URL, a DTP host). */
  torrent?: Buffer
  peers: PeerAddress[]
  trackers: string[]
  /** A DTP host's welcome message, from its HTTP API. */
  motd?: { host: string; text: string }
  /** A DTP host's signed generation record (docs/SCALE.md), and the repository it was asked for. */
  record?: Buffer
  repo?: string
  /** The host's HTTP base for this repository (`http://HOST:PORT/REPO/`): deltas are fetched there. */
  baseUrl?: string
  /**
   * A host with a record: the .torrent is fetched only if the delta chain cannot be used
   * (at 200k files it is 26 MB, the bulk of an update's bytes before deltas).
   */
  fetchTorrent?: () => Promise<Buffer>
  /** Bytes fetched over HTTP so far for this source (info, record). */
  httpBytes: number
  /** The publisher key a BEP 46 link names: pinned for this pull. */
  key?: string
}
