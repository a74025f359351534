/**
 * Every default a user can meet, named once. The CLI, the config loaders and the library all
 * read these: a CLI flag has no default of its own, so an unset flag falls through to the
 * config file's value and then to the value here (a flag default would shadow the config).
 */

/** The whole numbers a setting accepts. */
export interface IntRange {
  min: number
  max: number
}

export interface IntSetting extends IntRange {
  default: number
}

export const SETTINGS = {
  /** The DTP service port (tcp), DSYNC's; also the port a dtp:// URL without one means. */
  port: { default: 47921, min: 1, max: 65535 },
  /** Peer connections a client keeps open at once (repo `connections=`, `--connections`). */
  connections: { default: 50, min: 1, max: 1000 },
  /** Refuse a sync deleting more than this % of the tree: an upstream that lost its disk must not empty its mirrors. */
  deleteLimit: { default: 50, min: 0, max: 100 },
  /** Attempts after a network failure (repo `retries=`, `--retries`). */
  retries: { default: 3, min: 0, max: 100 },
  /** The bundled tracker's port (TCP and UDP; 0 picks a free one). */
  trackerPort: { default: 6969, min: 0, max: 65535 },
  /** Announce interval the tracker asks of clients, seconds. */
  trackerInterval: { default: 1800, min: 1, max: 86400 },
  /** Tracker requests per second per address, bursts of 5x; 0 = no limit. */
  trackerRateLimit: { default: 20, min: 0, max: 1_000_000 },
  /** Repositories the runner syncs at once (xync.conf `syncps=`, DSYNC's range). */
  syncps: { default: 1, min: 1, max: 100 },
} as const satisfies Record<string, IntSetting>

/** Ranges of settings whose default is computed, not fixed. */
export const RANGES = {
  /** gendsync hashing threads; default one per core, at most 8. */
  threads: { min: 1, max: 256 },
  /** Tracker --min-interval (default: half the interval), seconds. */
  trackerMinInterval: { min: 1, max: 86400 },
  /** Tracker --peer-timeout (default: twice the interval), seconds. */
  trackerPeerTimeout: { min: 1, max: 7 * 86400 },
} as const satisfies Record<string, IntRange>

/**
 * The port a client reports to trackers. A client accepts no incoming connections, but the
 * announce needs a port; 6881 is BitTorrent's customary one.
 */
export const CLIENT_ANNOUNCE_PORT = 6881
/** A peer must accept our TCP connection this soon. */
export const PEER_CONNECT_TIMEOUT_MS = 10_000
/** A peer silent this long (no message, no keep-alive) is dropped. */
export const PEER_IDLE_TIMEOUT_MS = 30_000
/** No piece verified (or no metadata) for this long while peers are connected: give up. */
export const STALL_MS = 60_000

// The downstream runner (`dsync`, -nolog, -emoff, -cleanlog): DSYNC's and ftpsync's values.
/** Logs older than this many days are removed at every run and by `-cleanlog` (DSYNC). */
export const LOG_KEEP_DAYS = 7
/** `-emoff`: how long stopped syncs get to finish cleanly before they are killed. */
export const EMOFF_GRACE_MS = 30_000
/** ftpsync's cap on deletions in one rsync run (`--max-delete`); `-force` lifts it. */
export const RSYNC_MAX_DELETE = 40_000
/** A webhook receiver must answer this soon; a slow one never holds up the next repository long. */
export const WEBHOOK_TIMEOUT_MS = 15_000
/** First wait before retrying a sync after a network failure; doubles each time. */
export const RETRY_FIRST_DELAY_MS = 2000
