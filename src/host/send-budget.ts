import type { HostLimits } from './limits.js'

/** A peer whose queue is below this may always read one more block, whatever others hold. */
const FLOOR_BYTES = 256 * 1024

export interface BudgetUser {
  /** Called when the total has room again for a user that was kept waiting. */
  wake(): void
}

/**
 * Bytes read for peers and not yet taken by their sockets, per peer and in total. A peer that
 * asks for blocks and never reads them (the host's RSS grew to 1.4 GB in 30 s) fills only
 * its own share; when every share together reaches the total, peers holding more than an
 * equal part of it wait until the total has room again, so hostile peers filling the total do
 * not starve a well-behaved one.
 */
export class SendBudget {
  private total = 0
  private readonly owned = new Map<BudgetUser, number>()
  private readonly waiting = new Set<BudgetUser>()

  /** Told the address of a peer dropped for breaking the rules (the host keeps it out a while). */
  onAbuse: (address: string) => void = () => undefined

  constructor(private limits: HostLimits) {}

  setLimits(limits: HostLimits): void {
    this.limits = limits
  }

  /** A peer whose queue stays full this long (it reads nothing) is dropped. */
  get stallMs(): number {
    return this.limits.idleTimeoutMs
  }

  get totalBytes(): number {
    return this.total
  }

  /** Records that `user` now holds `bytes`; wakes waiting users when the total went down. */
  set(user: BudgetUser, bytes: number): void {
    const before = this.owned.get(user) ?? 0
    if (bytes === 0) this.owned.delete(user)
    else this.owned.set(user, bytes)
    this.total += bytes - before
    if (bytes < before && this.total < this.limits.totalQueueBytes && this.waiting.size > 0) {
      const woken = [...this.waiting]
      this.waiting.clear()
      for (const u of woken) u.wake()
    }
  }

  /** True when the peer's own queue is at its cap: stop reading its requests. */
  full(user: BudgetUser): boolean {
    return (this.owned.get(user) ?? 0) >= this.limits.peerQueueBytes
  }

  /** May `user` start reading one more block now? If not for want of total room, it is woken later. */
  mayRead(user: BudgetUser): boolean {
    const own = this.owned.get(user) ?? 0
    if (own >= this.limits.peerQueueBytes) return false
    const fair = Math.max(FLOOR_BYTES, this.limits.totalQueueBytes / Math.max(1, this.owned.size))
    if (this.total < this.limits.totalQueueBytes || own < fair) return true
    this.waiting.add(user)
    return false
  }

  leave(user: BudgetUser): void {
    this.set(user, 0)
    this.waiting.delete(user)
  }
}
