import { makeFirewall, type Firewall } from '../src/config/dtp-config.js'
import { DsyncError, ExitCode } from '../src/errors.js'
import { ConnectionIds } from './connection-id.js'
import { Policy } from './policy.js'
import type { Refusal } from './policy.js'
import { GlobalBudget, RateLimiter } from './rate-limit.js'
import { TrackerStats } from './stats.js'
import { SwarmStore } from './swarm-store.js'
import type { TrackerEvent, TrackerOptions } from './options.js'

export type Transport = 'http' | 'udp' | 'ws'

/** What every transport (HTTP, UDP, WebSocket) shares: one store, one policy, one admission check. */
export interface TrackerContext {
  store: SwarmStore
  policy: Policy
  limiter: RateLimiter
  /** UDP connect replies a second for the whole tracker. */
  connects: GlobalBudget
  stats: TrackerStats
  /** UDP connection ids (BEP 15). */
  ids: ConnectionIds
  /** Reverse proxies whose X-Forwarded-For (and UDP `ip` field) we believe. */
  proxies: Firewall | null
  interval: number
  minInterval: number
  peerTimeoutMs: number
  defaultNumwant: number
  /** WebSocket swarms answer scrapes for torrents only WebRTC peers share (set once ws is up). */
  wsScrape?: (infoHash: string) => { complete: number; incomplete: number } | undefined
  /**
   * The one admission check for a request from `address`: the address allowlist, then (unless
   * `take` is false: a connection, not yet a request) the per-address rate limit. Returns why
   * it was refused, counted and logged, or undefined when admitted.
   */
  admit(transport: Transport, address: string, take?: boolean): 'address' | 'rate' | undefined
  /** A policy refusal (unknown torrent, bad passkey): counted and logged. */
  refuse(transport: Transport, address: string, refusal: Refusal): void
  /** One log line per (transport, address, reason) a minute. */
  onRefused(transport: Transport, address: string, reason: string): void
  /** Forgets old refusal log entries (the prune timer). */
  sweepRefusals(): void
}

const DEFAULT_NUMWANT = 50
/** UDP connect replies a second for the whole tracker unless --connect-rate says otherwise. */
const DEFAULT_CONNECT_RATE = 10_000
const REFUSAL_LOG_MS = 60_000

export function makeContext(opts: TrackerOptions, policy: Policy, emit: (e: TrackerEvent) => void, wsCounts: () => { torrents: number; peers: number }): TrackerContext {
  const store = new SwarmStore()
  const stats = new TrackerStats(store, wsCounts)
  const limiter = new RateLimiter(opts.rateLimit)
  const interval = opts.interval
  // A refused client retries every few seconds and must not flood the log.
  const lastRefusal = new Map<string, number>()
  const onRefused = (transport: Transport, address: string, reason: string): void => {
    const key = `${transport} ${address} ${reason}`
    const now = Date.now()
    if ((lastRefusal.get(key) ?? 0) > now - REFUSAL_LOG_MS) return
    lastRefusal.set(key, now)
    emit({ type: 'refused', transport, address, reason })
  }
  return {
    store, policy, limiter, connects: new GlobalBudget(opts.connectRate ?? DEFAULT_CONNECT_RATE), stats, ids: new ConnectionIds(), proxies: trustedProxies(opts.trustProxy),
    interval, minInterval: opts.minInterval ?? Math.max(1, Math.floor(interval / 2)),
    peerTimeoutMs: (opts.peerTimeout ?? interval * 2) * 1000, defaultNumwant: DEFAULT_NUMWANT, onRefused,
    admit(transport, address, take = true) {
      if (!policy.addressAllowed(address)) {
        stats.refused.address++
        onRefused(transport, address, 'address not allowed')
        return 'address'
      }
      if (take && !limiter.take(address)) {
        stats.refused.rate++
        return 'rate'
      }
      return undefined
    },
    refuse(transport, address, refusal) {
      stats.refused[refusal === 'unregistered torrent' ? 'torrent' : 'passkey']++
      onRefused(transport, address, refusal)
    },
    sweepRefusals() {
      const cutoff = Date.now() - REFUSAL_LOG_MS
      for (const [k, at] of lastRefusal) if (at < cutoff) lastRefusal.delete(k)
    },
  }
}

function trustedProxies(list: string[] | undefined): Firewall | null {
  try {
    return list?.length ? makeFirewall(list) : null
  } catch (err) {
    throw new DsyncError(ExitCode.usage, 'tracker.badOption', { option: '--trust-proxy', reason: (err as Error).message })
  }
}
