import bencode from 'bencode'
import type { Wire, WireExtension, WireExtensionClass } from 'bittorrent-protocol'
import { METADATA_BLOCK, MOTD_EXTENSION, UT_METADATA } from '../shared/wire-protocol.js'

/**
 * BEP 9 (ut_metadata), serving side only: a host always has the info dict, so a magnet link
 * naming it is enough for a leecher. The ut_metadata package is not used: its setMetadata
 * decodes and re-encodes the whole info dict on every connection (seconds and hundreds of
 * MB for a 200k-file repository); here the raw bytes from the .torrent are sliced as-is.
 */
export function metadataExtension(infoBytes: Buffer): WireExtensionClass {
  class UtMetadata implements WireExtension {
    constructor(private readonly wire: Wire) {
      wire.extendedHandshake.metadata_size = infoBytes.length
    }

    onMessage(buf: Uint8Array): void {
      let msg: { msg_type?: unknown; piece?: unknown }
      try {
        // A request is a bare dict; anything after it is ignored.
        msg = bencode.decode(buf.subarray(0, Math.min(buf.length, 256))) as typeof msg
      } catch {
        return
      }
      if (msg.msg_type !== 0 || typeof msg.piece !== 'number') return
      const piece = msg.piece
      const start = piece * METADATA_BLOCK
      if (!Number.isInteger(piece) || piece < 0 || start >= infoBytes.length) {
        this.wire.extended(UT_METADATA, bencode.encode({ msg_type: 2, piece }))
        return
      }
      const head = bencode.encode({ msg_type: 1, piece, total_size: infoBytes.length })
      const body = infoBytes.subarray(start, Math.min(start + METADATA_BLOCK, infoBytes.length))
      this.wire.extended(UT_METADATA, Buffer.concat([head, body]))
    }
  }
  ;(UtMetadata.prototype as WireExtension).name = UT_METADATA
  return UtMetadata
}

/**
 * The welcome message (DSYNC's motd) as a BEP 10 extension message, bencoded `{motd: text}`,
 * sent once the peer's extended handshake says it understands `dsync_motd`, and again when a
 * reload changes it. Other clients never receive it.
 */
export function motdExtension(currentMotd: () => string): WireExtensionClass {
  class DsyncMotd implements WireExtension {
    supported = false

    constructor(private readonly wire: Wire) {}

    onExtendedHandshake(): void {
      this.supported = true
      this.send(currentMotd())
    }

    send(text: string): void {
      if (!this.supported || text === '') return
      this.wire.extended(MOTD_EXTENSION, bencode.encode({ motd: text }))
    }
  }
  ;(DsyncMotd.prototype as WireExtension).name = MOTD_EXTENSION
  return DsyncMotd
}
