/** `upload-limit=` is in megabits per second (10^6 bit/s), as link speeds are quoted. */
export function mbitToBytesPerSecond(mbit: number): number {
  return mbit * 125_000
}

/** The bucket holds this many seconds of rate: a host or client stalled that long (a busy machine) catches up, and no second carries more than 10% over the cap. */
const BURST_SECONDS = 0.1
/** Never less than a few blocks, so a low cap still moves 16 KiB blocks whole. */
const MIN_BURST_BYTES = 64 * 1024
/** Wake-ups closer than this are batched: a timer per 16 KiB block would cost more than it saves. */
const MIN_WAIT_MS = 4

interface Waiter {
  bytes: number
  grant: () => void
}

/**
 * A token bucket in front of the host's send path. Waiting requests are queued per peer and
 * granted round-robin (one block per peer per turn), so a client with 500 requests queued
 * gets the same share as one with 5. A rate of 0 means no limit: take() returns undefined
 * and nothing is queued, so an unlimited host pays one comparison per block.
 */
export class TokenBucket {
  private rate = 0
  private tokens = 0
  private last = 0
  /** Peers with waiting requests; the first key is the next to be served (a Map keeps insertion order). */
  private readonly queues = new Map<object, Waiter[]>()
  private timer: NodeJS.Timeout | undefined

  get bytesPerSecond(): number {
    return this.rate
  }

  /** Changes the rate at once, for the requests already waiting too (reload applies live). */
  setRate(bytesPerSecond: number): void {
    this.refill()
    this.rate = Math.max(0, bytesPerSecond)
    this.tokens = Math.min(this.tokens, this.burst())
    clearTimeout(this.timer)
    this.timer = undefined
    this.pump()
  }

  /** Undefined: send now. A promise: send when it resolves. */
  take(peer: object, bytes: number): Promise<void> | undefined {
    if (this.rate === 0) return undefined
    this.refill()
    if (this.queues.size === 0 && this.tokens > 0) {
      this.tokens -= bytes
      return undefined
    }
    return new Promise(grant => {
      const q = this.queues.get(peer)
      if (q) q.push({ bytes, grant })
      else this.queues.set(peer, [{ bytes, grant }])
      this.schedule()
    })
  }

  /** A peer that left: its waiting requests are dropped (their promises never resolve; nothing holds them). */
  forget(peer: object): void {
    this.queues.delete(peer)
  }

  close(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.queues.clear()
  }

  private burst(): number {
    return Math.max(MIN_BURST_BYTES, this.rate * BURST_SECONDS)
  }

  private refill(): void {
    const now = performance.now()
    if (this.rate > 0) this.tokens = Math.min(this.burst(), this.tokens + ((now - this.last) / 1000) * this.rate)
    this.last = now
  }

  /** Grants while there are tokens; the balance may dip below zero by one block, repaid before the next grant. */
  private pump(): void {
    this.refill()
    for (const [peer, q] of this.queues) {
      if (this.rate > 0 && this.tokens <= 0) break
      const w = q.shift()!
      this.tokens -= w.bytes
      this.queues.delete(peer)
      // Back of the line: the next turn goes to another peer.
      if (q.length > 0) this.queues.set(peer, q)
      w.grant()
    }
    if (this.rate === 0) {
      // Limit lifted while requests waited: everything goes.
      for (const q of this.queues.values()) for (const w of q) w.grant()
      this.queues.clear()
    }
    this.schedule()
  }

  private schedule(): void {
    if (this.timer || this.queues.size === 0 || this.rate === 0) return
    const wait = Math.max(MIN_WAIT_MS, Math.ceil((-this.tokens / this.rate) * 1000))
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.pump()
    }, wait)
  }
}

/**
 * The host's limits: one bucket for the whole host (xync.conf) and one per repository
 * (repos/NAME.conf); a block passes the repository's bucket, then the host's. Buckets are
 * kept by repository name, so a new generation keeps its repository's limit and peers.
 */
export class UploadLimits {
  readonly host = new TokenBucket()
  private readonly repos = new Map<string, TokenBucket>()
  /** As configured, Mbit/s, for status and metrics. */
  configured: { host: number; repos: Record<string, number> } = { host: 0, repos: {} }

  /** Applies xync.conf's and every repository's `upload-limit=` (Mbit/s, 0 or absent = none). */
  configure(hostMbit: number, repoMbit: Map<string, number>): void {
    this.configured = { host: hostMbit, repos: Object.fromEntries(repoMbit) }
    this.host.setRate(mbitToBytesPerSecond(hostMbit))
    for (const [name, bucket] of this.repos) if (!repoMbit.has(name)) bucket.setRate(0)
    for (const [name, mbit] of repoMbit) this.bucket(name).setRate(mbitToBytesPerSecond(mbit))
  }

  /** Whether anything limits `repo`'s uploads (its own limit or the host's). */
  limits(repo: string): boolean {
    return this.host.bytesPerSecond > 0 || (this.repos.get(repo)?.bytesPerSecond ?? 0) > 0
  }

  /** Waits (when limited) until `bytes` may go to `peer` of `repo`. */
  take(repo: string, peer: object, bytes: number): Promise<void> | undefined {
    const first = this.repos.get(repo)?.take(peer, bytes)
    if (!first) return this.host.take(peer, bytes)
    return first.then(() => this.host.take(peer, bytes))
  }

  forget(repo: string, peer: object): void {
    this.repos.get(repo)?.forget(peer)
    this.host.forget(peer)
  }

  close(): void {
    this.host.close()
    for (const b of this.repos.values()) b.close()
  }

  private bucket(repo: string): TokenBucket {
    let b = this.repos.get(repo)
    if (!b) this.repos.set(repo, (b = new TokenBucket()))
    return b
  }
}
