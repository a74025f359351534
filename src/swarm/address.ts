/** A peer's TCP address. Kept apart from peer.ts so parsing one needs no BitTorrent stack. */
export interface PeerAddress {
  host: string
  port: number
}

export function formatAddress(a: PeerAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`
}

/** `host:port` or `[v6]:port`; undefined when malformed. */
export function parseAddress(text: string, defaultPort?: number): PeerAddress | undefined {
  const m = /^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/.exec(text) ?? /^([^:[\]]+)(?::(\d+))?$/.exec(text)
  if (!m) return undefined
  const port = m[2] !== undefined ? Number(m[2]) : defaultPort
  if (port === undefined || !Number.isInteger(port) || port < 1 || port > 65535) return undefined
  return { host: m[1], port }
}
