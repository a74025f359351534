import { createHash } from 'node:crypto'
import bencode from 'bencode'
import type { Wire, WireExtension, WireExtensionClass } from 'bittorrent-protocol'
import { METADATA_BLOCK, MOTD_EXTENSION, UT_METADATA } from '../shared/wire-protocol.js'

/**
 * BEP 9 (ut_metadata), fetching side: asks a peer for the info dict of a magnet link, block
 * by block, and checks the result against the infohash. A size cap (the peer announces the
 * size) keeps a hostile peer from making us allocate without bound.
 */
export interface MetadataFetcher extends WireExtension {
  fetch(infoHash: string, maxBytes: number, timeoutMs: number): Promise<Buffer>
}

export function metadataFetcher(): WireExtensionClass {
  class UtMetadataFetch implements MetadataFetcher {
    private size = 0
    private handshaken: (() => void) | undefined
    private readonly ready = new Promise<void>(resolve => (this.handshaken = resolve))
    private blocks: (Buffer | undefined)[] = []
    private settle: ((err: Error | null) => void) | undefined

    constructor(private readonly wire: Wire) {}

    onExtendedHandshake(h: Record<string, unknown>): void {
      const size = h.metadata_size
      if (typeof size === 'number' && Number.isInteger(size) && size > 0) this.size = size
      this.handshaken?.()
    }

    async fetch(infoHash: string, maxBytes: number, timeoutMs: number): Promise<Buffer> {
      const timer = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('metadata timed out')), timeoutMs).unref())
      await Promise.race([this.ready, timer])
      if (this.size === 0) throw new Error('peer does not offer metadata')
      if (this.size > maxBytes) throw new Error(`metadata of ${this.size} bytes exceeds the cap of ${maxBytes}`)
      const count = Math.ceil(this.size / METADATA_BLOCK)
      this.blocks = new Array(count).fill(undefined)
      const done = new Promise<void>((resolve, reject) => {
        this.settle = err => (err ? reject(err) : resolve())
      })
      for (let piece = 0; piece < count; piece++) this.wire.extended(UT_METADATA, bencode.encode({ msg_type: 0, piece }))
      await Promise.race([done, timer])
      const info = Buffer.concat(this.blocks as Buffer[])
      if (createHash('sha1').update(info).digest('hex') !== infoHash) throw new Error('metadata does not match the infohash')
      return info
    }

    onMessage(buf: Uint8Array): void {
      const data = Buffer.from(buf)
      // The bencoded header is a flat dict of integers; the block follows it.
      const end = data.indexOf('ee') + 2
      if (end < 2) return this.settle?.(new Error('malformed metadata message'))
      let msg: { msg_type?: number; piece?: number }
      try {
        msg = bencode.decode(data.subarray(0, end))
      } catch {
        return this.settle?.(new Error('malformed metadata message'))
      }
      if (msg.msg_type === 2) return this.settle?.(new Error('peer rejected the metadata request'))
      const piece = msg.piece
      if (msg.msg_type !== 1 || typeof piece !== 'number' || piece < 0 || piece >= this.blocks.length) return
      const expected = piece === this.blocks.length - 1 ? this.size - piece * METADATA_BLOCK : METADATA_BLOCK
      const block = data.subarray(end)
      if (block.length !== expected) return this.settle?.(new Error('metadata block of the wrong size'))
      this.blocks[piece] = block
      if (this.blocks.every(b => b !== undefined)) this.settle?.(null)
    }
  }
  ;(UtMetadataFetch.prototype as WireExtension).name = UT_METADATA
  return UtMetadataFetch
}

/** Receives the host's welcome message (DSYNC's motd), sent as `{motd: text}`. */
export function motdReceiver(onMotd: (text: string) => void): WireExtensionClass {
  class DsyncMotdReceive implements WireExtension {
    constructor(_wire: Wire) {}

    onMessage(buf: Uint8Array): void {
      try {
        const msg = bencode.decode(buf.subarray(0, 64 * 1024)) as { motd?: Uint8Array }
        if (msg.motd instanceof Uint8Array) onMotd(Buffer.from(msg.motd).toString('utf8'))
      } catch {
        // a malformed welcome message is dropped, the transfer goes on
      }
    }
  }
  ;(DsyncMotdReceive.prototype as WireExtension).name = MOTD_EXTENSION
  return DsyncMotdReceive
}
