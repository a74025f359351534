import { randomBytes } from 'node:crypto'

/** Azureus-style peer id (BEP 20): `-DS0100-` then 12 random bytes. Hosts and clients alike. */
export function makePeerIdBytes(): Buffer {
  return Buffer.concat([Buffer.from('-DS0100-'), randomBytes(12)])
}

/** The same, as hex, the form bittorrent-protocol and bittorrent-tracker take. */
export function makePeerId(): string {
  return makePeerIdBytes().toString('hex')
}
