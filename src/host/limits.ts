import type { MainConfig } from '../config/main-config.js'

/**
 * What one connection, or one address, may cost the host. Every DTP port is open to whoever
 * firewall.conf lets in (everyone by default), so each resource a peer can make us hold has
 * a bound here: time (timeouts), descriptors (connections per address) and memory (bytes
 * queued for a peer's socket).
 */
export interface HostLimits {
  /** A complete HTTP request head, or the BitTorrent handshake, must arrive this soon. */
  headerTimeoutMs: number
  /** A connection that sends nothing for this long is closed; so is a peer whose queue stays full. */
  idleTimeoutMs: number
  /** Open connections (HTTP and peer wire together) from one address. */
  connectionsPerAddress: number
  /** Block bytes read for one peer and not yet taken by its socket; over it we stop reading its requests. */
  peerQueueBytes: number
  /** The same, summed over every peer of the host. */
  totalQueueBytes: number
}

export const DEFAULT_LIMITS: HostLimits = {
  headerTimeoutMs: 10_000,
  // BitTorrent peers send a keep-alive at least every 2 minutes (BEP 3).
  idleTimeoutMs: 300_000,
  // Generous for a NAT with many users; 2,000 held connections need 60 addresses.
  connectionsPerAddress: 32,
  // 4 MiB is ~40 ms of a 1 Gbit/s link on top of the kernel's socket buffer: enough for a fast
  // peer (1 MiB cut a loaded client to 20% in bench host-abuse); when hostile peers fill the
  // total, each peer still gets an equal share of it (SendBudget).
  peerQueueBytes: 4 << 20,
  totalQueueBytes: 32 << 20,
}

export function limitsFrom(main: MainConfig): HostLimits {
  return {
    ...DEFAULT_LIMITS,
    ...(main.headerTimeout !== undefined && { headerTimeoutMs: main.headerTimeout * 1000 }),
    ...(main.idleTimeout !== undefined && { idleTimeoutMs: main.idleTimeout * 1000 }),
    ...(main.maxConnPerAddress !== undefined && { connectionsPerAddress: main.maxConnPerAddress }),
  }
}
