import type { Firewall } from '../config/dtp-config.js'
import { DEFAULT_PORT } from '../config/main-config.js'
import { formatAddress, parseAddress, type PeerAddress } from '../swarm/address.js'
import { plainAddress } from '../shared/address.js'

/** Addresses learned per repository; the oldest go first beyond this. */
const MAX_LEARNED = 200
/** A learned address nobody repeated for this long is forgotten. */
const LEARNED_TTL_MS = 60 * 60 * 1000
/** Handshake checks of learned addresses running at once; more wait for a later ut_pex. */
const MAX_CHECKS = 4

/**
 * The other DTP hosts this host tells clients about, in its `dtp://` info (`hosts`) and over
 * ut_pex: the `peers=` of xync.conf (every repository), and hosts its own peers told it about
 * over ut_pex (per repository; a client sends the hosts it is connected to). A learned address
 * is passed on only once it answered a BitTorrent handshake for the repository (`check`), and
 * only while firewall.conf would let it connect here too: a host restricted to a group of
 * mirrors never advertises an address outside that group, and a client cannot use the host to
 * spread arbitrary addresses. The host's own addresses are never listed.
 */
export class KnownHosts {
  private configured: PeerAddress[] = []
  private readonly learned = new Map<string, Map<string, { addr: PeerAddress; seen: number; ok: boolean }>>()
  private self = new Set<string>()
  private checking = 0

  constructor(private firewall: Firewall, private readonly check: (repo: string, addr: PeerAddress) => Promise<boolean>) {}

  configure(peers: PeerAddress[], firewall: Firewall, selfAddresses: PeerAddress[]): void {
    this.configured = peers
    this.firewall = firewall
    this.self = new Set(selfAddresses.map(formatAddress))
  }

  /** Addresses a peer (`from`, host:port) of `repo` told us about; new ones are checked before they are listed. */
  learn(repo: string, peers: PeerAddress[], from: string): void {
    let m = this.learned.get(repo)
    if (!m) this.learned.set(repo, (m = new Map()))
    const now = Date.now()
    for (const addr of peers) {
      const label = formatAddress(addr)
      if (label === from || this.self.has(label) || !this.firewall.allows(plainAddress(addr.host))) continue
      const known = m.get(label)
      if (known) {
        m.delete(label) // re-inserted at the end: the Map's order is oldest first
        m.set(label, { ...known, seen: now })
        continue
      }
      if (this.checking >= MAX_CHECKS) continue
      const entry = { addr, seen: now, ok: false }
      m.set(label, entry)
      if (m.size > MAX_LEARNED) m.delete(m.keys().next().value!)
      this.checking++
      this.check(repo, addr).then(ok => {
        entry.ok = ok
        if (!ok) m.delete(label)
      }, () => m.delete(label)).finally(() => this.checking--)
    }
  }

  /** What a client of `repo` is told, leaving out `except` (the client itself). */
  forRepo(repo: string, except = ''): PeerAddress[] {
    const out = new Map<string, PeerAddress>()
    for (const a of this.configured) out.set(formatAddress(a), a)
    const now = Date.now()
    for (const [label, e] of this.learned.get(repo) ?? []) {
      if (!e.ok || now - e.seen > LEARNED_TTL_MS) continue
      if (this.firewall.allows(plainAddress(e.addr.host))) out.set(label, e.addr)
    }
    for (const s of this.self) out.delete(s)
    out.delete(except)
    return [...out.values()]
  }

  forget(repo: string): void {
    this.learned.delete(repo)
  }
}

/** xync.conf `peers=` entries (checked when the config was read) as addresses; the DTP port when none is given. */
export function hostAddresses(entries: string[]): PeerAddress[] {
  return entries.map(e => parseAddress(e, DEFAULT_PORT)).filter((a): a is PeerAddress => a !== undefined)
}
