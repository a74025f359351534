import { randomBytes } from 'node:crypto'

/** Azureus-style peer id (BEP 20): `-DS0100-` then 12 random bytes, as hex for bittorrent-protocol. */
export function makePeerId(): string {
  return Buffer.concat([Buffer.from('-DS0100-'), randomBytes(12)]).toString('hex')
}
