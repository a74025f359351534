import { createHmac, randomBytes } from 'node:crypto'

/**
 * BEP 15 connection ids that prove the sender received our connect reply at its address.
 * Stock bittorrent-tracker accepts any id, so a forged source address can add or remove
 * peers and aim replies at a victim. An id here is the time bucket (4 bytes) and the first
 * 4 bytes of an HMAC of bucket, address and port under a secret made at startup: nothing is
 * stored per client, and an id is honoured for one to two buckets (BEP 15 asks for
 * at least one minute; clients reconnect after that).
 */
export class ConnectionIds {
  private readonly secret: Buffer
  private readonly scratch = Buffer.alloc(4 + 2 + 64)

  constructor(readonly bucketMs = 60_000, secret: Buffer = randomBytes(32)) {
    this.secret = secret
  }

  issue(address: string, port: number, now = Date.now()): Buffer {
    const bucket = Math.floor(now / this.bucketMs) >>> 0
    const id = Buffer.allocUnsafe(8)
    id.writeUInt32BE(bucket, 0)
    id.writeUInt32BE(this.mac(bucket, address, port), 4)
    return id
  }

  /** `packet` holds the id in its first 8 bytes. */
  verify(packet: Buffer, address: string, port: number, now = Date.now()): boolean {
    const bucket = packet.readUInt32BE(0)
    const current = Math.floor(now / this.bucketMs) >>> 0
    if (bucket !== current && bucket !== ((current - 1) >>> 0)) return false
    return packet.readUInt32BE(4) === this.mac(bucket, address, port)
  }

  private mac(bucket: number, address: string, port: number): number {
    const s = this.scratch
    s.writeUInt32BE(bucket, 0)
    s.writeUInt16BE(port, 4)
    const n = s.write(address, 6, 'latin1')
    return createHmac('sha256', this.secret).update(s.subarray(0, 6 + n)).digest().readUInt32BE(0)
  }
}
