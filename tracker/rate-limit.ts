/** Addresses the limiter remembers at most (about 10 MB): spoofed sources cannot grow it further. */
export const MAX_LIMITER_ENTRIES = 65_536

/**
 * A token bucket per client address: `rate` requests a second on average, bursts of
 * `burst`. Over the limit, UDP requests are dropped and HTTP/WS ones refused, so one
 * address cannot flood the tracker or fill the swarms with made-up ports. rate 0 = off.
 * The table is bounded: when full, the least recently seen address is forgotten (a flood
 * of spoofed UDP sources, each new, grew it to 640 MB RSS before the minute's sweep).
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>()

  constructor(readonly rate: number, readonly burst = Math.max(1, rate * 5), private readonly maxEntries = MAX_LIMITER_ENTRIES) {}

  get enabled(): boolean {
    return this.rate > 0
  }

  take(address: string, now = Date.now()): boolean {
    if (this.rate <= 0) return true
    let b = this.buckets.get(address)
    if (!b) {
      if (this.buckets.size >= this.maxEntries) {
        // Map order is insertion order, and a seen address is re-inserted: the first is the oldest.
        this.buckets.delete(this.buckets.keys().next().value as string)
      }
      b = { tokens: this.burst, at: now }
    } else {
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) * this.rate) / 1000)
      b.at = now
      this.buckets.delete(address)
    }
    this.buckets.set(address, b)
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
  }

  /** Forgets addresses whose bucket has refilled: they are as good as new. */
  sweep(now = Date.now()): void {
    for (const [address, b] of this.buckets) {
      if (b.tokens + ((now - b.at) * this.rate) / 1000 >= this.burst) this.buckets.delete(address)
    }
  }

  get size(): number {
    return this.buckets.size
  }
}

/**
 * One bucket for the whole tracker: UDP connect replies a second, whatever the source. A
 * connect costs an HMAC and a reply, and a flood from random (spoofed) sources never meets
 * the per-address limit; past this budget connects are dropped. 0 = no budget.
 */
export class GlobalBudget {
  private tokens: number
  private at = Date.now()

  constructor(readonly rate: number) {
    this.tokens = rate
  }

  take(now = Date.now()): boolean {
    if (this.rate <= 0) return true
    // A second's worth at most: a burst of one second's budget.
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.at) * this.rate) / 1000)
    this.at = now
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }
}
