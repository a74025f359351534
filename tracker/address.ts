import { isIP } from 'node:net'
import type { Firewall } from '../src/config/dtp-config.js'
import { plainAddress } from '../src/shared/address.js'

/**
 * The peer's address as BEP 23 compact bytes (4 or 16) plus port, held as a latin1 string:
 * it is the peer's identity in a swarm and the bytes an announce reply carries, so one
 * short string serves as both and nothing else is stored per peer.
 */
export function compactPeer(address: string, port: number): string | null {
  const family = isIP(address)
  if (family === 4) {
    const p = address.split('.')
    return String.fromCharCode(+p[0], +p[1], +p[2], +p[3], port >>> 8, port & 255)
  }
  if (family === 6) {
    const bytes = ipv6Bytes(address)
    if (!bytes) return null
    return bytes.toString('latin1') + String.fromCharCode(port >>> 8, port & 255)
  }
  return null
}

/** Back from compact form, for non-compact (BEP 3 dictionary) replies and logs. */
export function expandPeer(compact: string): { ip: string; port: number } {
  const n = compact.length
  const port = (compact.charCodeAt(n - 2) << 8) | compact.charCodeAt(n - 1)
  if (n === 6) {
    return { ip: `${compact.charCodeAt(0)}.${compact.charCodeAt(1)}.${compact.charCodeAt(2)}.${compact.charCodeAt(3)}`, port }
  }
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push(((compact.charCodeAt(i) << 8) | compact.charCodeAt(i + 1)).toString(16))
  return { ip: groups.join(':'), port }
}

function ipv6Bytes(address: string): Buffer | null {
  const zone = address.indexOf('%')
  let text = zone >= 0 ? address.slice(0, zone) : address
  const out = Buffer.alloc(16)
  // An embedded IPv4 tail (::ffff:1.2.3.4 written by hand) becomes two groups.
  const lastColon = text.lastIndexOf(':')
  const tail = text.slice(lastColon + 1)
  if (tail.includes('.')) {
    const p = tail.split('.').map(Number)
    text = text.slice(0, lastColon + 1) + ((p[0] << 8) | p[1]).toString(16) + ':' + ((p[2] << 8) | p[3]).toString(16)
  }
  const [head, rest] = text.split('::')
  const headGroups = head ? head.split(':') : []
  const restGroups = rest !== undefined && rest !== '' ? rest.split(':') : []
  const fill = 8 - headGroups.length - restGroups.length
  if (fill < 0 || (rest === undefined && fill !== 0)) return null
  const groups = [...headGroups, ...new Array<string>(rest === undefined ? 0 : fill).fill('0'), ...restGroups]
  if (groups.length !== 8) return null
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16) & 0xffff, i * 2))
  return out
}

/**
 * The client's address. A request that comes through a configured reverse proxy names the
 * client in X-Forwarded-For; each proxy appends what it saw, so the entries a client can
 * forge are on the left. Walking from the right and stopping at the first address that is
 * not one of our proxies gives the last hop we can vouch for (stock bittorrent-tracker takes
 * the leftmost entry, which the client writes itself).
 */
export function clientAddress(socketAddress: string, forwardedFor: string | string[] | undefined, proxies: Firewall | null): string {
  const direct = plainAddress(socketAddress)
  if (!proxies || !proxies.restricted || !proxies.allows(direct) || forwardedFor === undefined) return direct
  const entries = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',')
  let chosen = direct
  for (let i = entries.length - 1; i >= 0; i--) {
    const entry = plainAddress(entries[i].trim())
    if (isIP(entry) === 0) break
    chosen = entry
    if (!proxies.allows(entry)) break
  }
  return chosen
}
