import { isIP } from 'node:net'

/**
 * Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d; logs, allowlists and the tracker's
 * peer lists use the plain form. The one place that rule is written (host, client, tracker).
 */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address
}
