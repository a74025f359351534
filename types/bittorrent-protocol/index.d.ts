// bittorrent-protocol 5 ships no types; this covers what dsync uses.
declare module 'bittorrent-protocol' {
  import { Duplex } from 'node:stream'

  export interface WireExtension {
    name?: string
    onHandshake?(infoHash: string, peerId: string, extensions: Record<string, boolean>): void
    onExtendedHandshake?(handshake: Record<string, unknown>): void
    onMessage?(buf: Uint8Array): void
  }
  export type WireExtensionClass = new (wire: Wire) => WireExtension

  export interface HandshakeExtensions {
    dht?: boolean
    fast?: boolean
    extended?: boolean
  }

  export class Wire extends Duplex {
    constructor(type?: string, peEnabled?: number)
    peerId: string | null
    type: string
    amChoking: boolean
    peerChoking: boolean
    hasFast: boolean
    uploaded: number
    downloaded: number
    uploadSpeed(): number
    downloadSpeed(): number
    extendedHandshake: Record<string, unknown>
    peerExtendedHandshake: Record<string, unknown>
    peerExtendedMapping: Record<string, number>
    peerExtensions: HandshakeExtensions
    peerPieces: { get(index: number): boolean }
    use(ext: WireExtensionClass): void
    handshake(infoHash: string | Uint8Array, peerId: string | Uint8Array, extensions?: HandshakeExtensions): void
    setKeepAlive(enable: boolean): void
    setTimeout(ms: number, unref?: boolean): void
    choke(): void
    unchoke(): void
    interested(): void
    uninterested(): void
    bitfield(bitfield: Uint8Array): void
    haveAll(): void
    request(index: number, offset: number, length: number, cb: (err: Error | null, block: Uint8Array | null) => void): void
    piece(index: number, offset: number, buffer: Uint8Array): void
    reject(index: number, offset: number, length: number): void
    extended(ext: number | string, obj: unknown): void
    override destroy(): this
    override end(): this
  }
  export default Wire
}
