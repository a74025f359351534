/**
 * A token bucket per client address: `rate` requests a second on average, bursts of
 * `burst`. Over the limit, UDP requests are dropped and HTTP/WS ones refused, so one
 * address cannot flood the tracker or fill the swarms with made-up ports. rate 0 = off.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>()

  constructor(readonly rate: number, readonly burst = Math.max(1, rate * 5)) {}

  get enabled(): boolean {
    return this.rate > 0
  }

  take(address: string, now = Date.now()): boolean {
    if (this.rate <= 0) return true
    let b = this.buckets.get(address)
    if (!b) {
      b = { tokens: this.burst, at: now }
      this.buckets.set(address, b)
    } else {
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) * this.rate) / 1000)
      b.at = now
    }
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
