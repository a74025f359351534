import type { Wire } from 'bittorrent-protocol'

/**
 * What the host uses of bittorrent-protocol's Wire beyond its documented methods, in one place:
 * when the package changes, this is the file to check (written against bittorrent-protocol
 * 5.0.9, a streamx Duplex). The session sends most blocks past the Wire (peer-session.ts), so it
 * must see the bytes the Wire still holds and keep the Wire's upload figures true.
 */
export interface WireInternals {
  /** Bytes the Wire holds for the socket, not yet taken by it. */
  queued(): number
  /** Counts a block sent past the Wire as `Wire.piece` counts its own: `uploaded` and the upload rate. */
  countSent(bytes: number): void
  /** The instance of an extension the Wire was given with `use`, by its name. */
  extension<T extends object>(name: string): T | undefined
}

/** The Wire's fields this module reads and writes. */
interface WireFields {
  /** streamx's readable state: `buffered` counts the bytes pushed and not yet read (Duplex has no `readableLength`). */
  _readableState?: { buffered?: number }
  uploaded: number
  /** A speedometer (`throughput`): called with a byte count it records them, without one it returns the rate. */
  uploadSpeed: (delta?: number) => number
}

export function wireInternals(wire: Wire): WireInternals {
  const fields = wire as unknown as WireFields
  return {
    queued: () => fields._readableState?.buffered ?? 0,
    countSent: bytes => {
      fields.uploaded += bytes
      fields.uploadSpeed(bytes)
    },
    // `use` keeps each extension as a property named after it (the package's README: `wire.ut_metadata`).
    extension: <T extends object>(name: string) => (wire as unknown as Record<string, T | undefined>)[name],
  }
}
