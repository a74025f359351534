/**
 * What `startTracker` is given and what it reports: their own file so that the shared context
 * (context.ts) and the server that builds it (server.ts) both depend on them, not on each other.
 */
import type { PolicyOptions } from './policy.js'

export interface TrackerOptions {
  /** 0 picks a free port (the same number for TCP and UDP). */
  port: number
  /** Default `::` (dual stack), falling back to 0.0.0.0 where IPv6 is off. */
  listen?: string
  http: boolean
  udp: boolean
  ws: boolean
  /** Seconds between announces we ask for, and the least we accept. */
  interval: number
  minInterval?: number
  /** Seconds of silence after which a peer is dropped; default twice the interval. */
  peerTimeout?: number
  /** Requests per second per address; 0 turns the limit off. */
  rateLimit: number
  /** UDP connect replies a second for the whole tracker (spoofed sources escape the per-address limit); 0 = none. */
  connectRate?: number
  /** Reverse proxies whose X-Forwarded-For (and UDP `ip` field) we believe. */
  trustProxy?: string[]
  policy: PolicyOptions
  onEvent?: (event: TrackerEvent) => void
}

export type TrackerEvent =
  | { type: 'listening'; address: string; port: number; transports: string[]; private: boolean; torrents: number; keys: number }
  | { type: 'reload'; torrents: number; keys: number; dropped: number }
  | { type: 'reloadFailed'; reason: string }
  | { type: 'refused'; transport: string; address: string; reason: string }
  | { type: 'warning'; message: string }
