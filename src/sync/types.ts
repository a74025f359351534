import type { SwarmSession } from './open-swarm.js'
import type { GenerationRecord } from '../generation/record.js'
import type { ManifestEntry } from '../manifest/entry.js'
import type { Manifest } from '../manifest/format.js'
import type { PeerAddress, PeerConnection } from '../swarm/peer.js'
import type { Plan } from './plan.js'
import type { ResolvedSource } from './resolved-source.js'
import type { Staging } from './staging.js'
import type { TransferProgress } from './transfer.js'

// The types the client's stages pass along (src/sync/pull.ts wires them; docs/ARCHITECTURE.md
// has the map): options in, the context stage 1 builds, the route a metadata stage yields, and
// the result out.

export interface PullOptions {
  sources: string[]
  dest: string
  peers?: PeerAddress[]
  trackers?: string[]
  connections?: number
  noDelete?: boolean
  dryRun?: boolean
  force?: boolean
  /** Refuse to delete more than this percentage of DEST's entries (without force). */
  deleteLimit?: number
  indexFiles: string[]
  localAddress?: string
  /** xync.conf ipadd=: peer connections spread over these local addresses. */
  localAddresses?: string[]
  onProgress?: (p: TransferProgress & { phase: 'metadata' | 'manifest' | 'files' }) => void
  onWarning?: (message: string) => void
  onMotd?: (peer: string, text: string) => void
  /** Each peer connection as it is made (tests count connections and sample per-host bytes). */
  onPeer?: (peer: PeerConnection) => void
  /** Test hook: the new list, parsed, before the plan (a test checks that nothing holds it through the transfer). */
  onList?: (list: Manifest) => void
  /** Test hook: called after each apply item and step (see applyPlan), and after the commit. */
  onApplyStep?: (step: string, done?: number) => void
  /** The caller holds DEST's lock already (dsync sync); otherwise pull takes it. */
  lockHeld?: boolean
  /** The publisher's key (dsync-key=, --key): records not signed by it are refused. */
  key?: string
  /** Walk DEST even when it already applied the host's record (finds local damage). */
  rescan?: boolean
  /** DHT nodes to start from for a BEP 46 (btpk) source; undefined: the public defaults. */
  dhtBootstrap?: string[]
  /** Look hosts up in the BitTorrent DHT too (BEP 5; xync.conf dht=true, --dht). */
  dht?: boolean
}

export interface PullResult {
  dest: string
  /** The repository's name (the torrent's). */
  repo: string
  infoHash: string
  upToDate: boolean
  dryRun: boolean
  added: number
  changed: number
  removed: number
  filesFetched: number
  filesCopiedLocally: number
  bytesToFetch: number
  bytesReceived: number
  bytesPerHost: Record<string, number>
  seconds: number
  plan?: { added: string[]; changed: string[]; removed: string[] }
  /** How the new data.dsync was reached: the delta chain, or the full torrent. */
  route: 'full' | 'deltas'
  /** Deltas followed (route 'deltas'). */
  deltas?: number
  /** The signed record's sequence number, when the source had one. */
  seq?: number
  /** The record was checked against a pinned key. */
  verified: boolean
  /** Bytes fetched over HTTP: host info, record, deltas, torrents (file data not included). */
  metadataBytes: number
  /**
   * After a delta update, the generation's torrents (repository or index torrent, and shard
   * torrents): built here, kept from DEST (unchanged shards), or fetched because they could not
   * be rebuilt to the record's infohash.
   */
  torrents?: TorrentTally
  /**
   * How the plan saw DEST: 'deltas' = only the paths the deltas name were looked at (DEST
   * applied the previous generation); 'walk' = every entry of DEST was (docs/SCALE.md).
   */
  planned?: 'deltas' | 'walk'
}

export interface TorrentTally {
  rebuilt: number
  kept: number
  fetched: number
}

/** What both routes share: the options, the resolved sources and the checked record. */
export interface PullContext {
  opts: PullOptions
  resolved: ResolvedSource[]
  record?: GenerationRecord
  started: number
  onMotd: (host: string, text: string) => void
  /** HTTP bytes a route fetched beyond the sources' own (deltas, delta torrents). */
  extraHttpBytes?: number
  /** The delta route's torrents: rebuilt, kept or fetched (PullResult.torrents). */
  torrents?: TorrentTally
  /** PullResult.planned. */
  planned?: 'deltas' | 'walk'
  /** A bootstrap's swarm, opened by the resolve stage; openSwarm hands it over (pull() stops it if nothing did). */
  swarmAhead?: SwarmSession
}

/** One route's contribution to executePlan: the new list, how to fetch, what else to commit. */
export interface Route {
  repo: string
  infoHash: string
  /** The new list parsed (the plan walks DEST against it; executePlan drops it, and `previous`, once the plan is made); not needed when the route plans itself (`plan`). */
  manifest?: Manifest
  /** The new data.dsync's bytes, until the route parks them on disk (`manifestFile`) for the commit. */
  manifestBytes?: Buffer
  /** The new data.dsync, written and fsync'ed under staging: the commit renames it into place. */
  manifestFile?: string
  /** DEST's own data.dsync when it has a valid one (the plan trusts what it vouches for). */
  previous?: Manifest
  /** DEST's data.dsync is already this generation's: nothing to commit when the plan is empty. */
  sameGeneration: boolean
  route: 'full' | 'deltas'
  deltas?: number
  /** Under DEST's lock, before the plan (not on a dry run): writes what it can keep on disk instead of in memory. */
  beforePlan?: () => void
  /** The run failed: removes what beforePlan wrote that the fetch has not begun to use (a refused pull leaves DEST as it was). */
  abandon?: () => void
  /** The route's own plan (the delta route plans from the deltas); without it DEST is walked against `manifest`. */
  plan?: () => Promise<Plan>
  /** Downloads these contents (SHA-256 hex -> first entry; plan.fetch itself in a bootstrap) into staging. */
  fetch: (items: ReadonlyMap<string, ManifestEntry>, staging: Staging) => Promise<{ bytesReceived: number; bytesPerPeer: Record<string, number> }>
  /** Writes the route's own files under DEST/.dsync/ after data.dsync (the torrent, the magnet link). */
  commit: () => void | Promise<void>
  /** Written before data.dsync (deltas a host re-serving DEST offers). */
  beforeCommit?: () => void | Promise<void>
}
