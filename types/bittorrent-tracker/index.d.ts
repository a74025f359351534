// The parts of bittorrent-tracker 11 that dsync uses: the server (for its WebSocket /
// WebRTC signalling) and the client (tests announce with it).

declare module 'bittorrent-tracker/server' {
  import { EventEmitter } from 'node:events'
  import type { IncomingMessage } from 'node:http'
  import type { Duplex } from 'node:stream'

  export interface TrackerWebSocket extends EventEmitter {
    readyState: number
    ip?: string
    peerId: string | null
    infoHashes: string[] | null
    send(data: string, cb?: (err?: Error) => void): void
    close(code?: number, reason?: string): void
    terminate(): void
  }

  export interface WebSocketServerLike extends EventEmitter {
    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, cb: (ws: TrackerWebSocket) => void): void
    close(cb?: () => void): void
  }

  export interface SwarmPeer {
    type: 'http' | 'udp' | 'ws'
    complete: boolean
    peerId: string
    ip: string
    port: number
  }

  export interface Swarm {
    infoHash: string
    complete: number
    incomplete: number
    peers: {
      keys: string[]
      length: number
      peek(key: string): SwarmPeer | undefined
    }
  }

  /** The request after bittorrent-tracker's parse-* step; info_hash in hex. */
  export interface TrackerParams {
    action: number
    type: 'http' | 'udp' | 'ws'
    info_hash: string | string[] | undefined
    peer_id?: string
    ip?: string
    port?: number
    event?: string
    headers?: Record<string, string | string[] | undefined>
    socket?: TrackerWebSocket
    [key: string]: unknown
  }

  export type TrackerResponse = Record<string, unknown>
  export type RequestCallback = (err: Error | null, response?: TrackerResponse) => void

  export interface ServerOptions {
    interval?: number
    trustProxy?: boolean
    http?: boolean | object
    udp?: boolean | object
    ws?: boolean | { noServer?: boolean; maxPayload?: number; [key: string]: unknown }
    stats?: boolean
    filter?: (infoHash: string, params: TrackerParams, cb: (err?: Error | null) => void) => void
    peersCacheLength?: number
    peersCacheTtl?: number
  }

  export default class Server extends EventEmitter {
    constructor(opts?: ServerOptions)
    intervalMs: number
    peersCacheLength?: number
    peersCacheTtl?: number
    torrents: Record<string, Swarm>
    ws: WebSocketServerLike | null
    destroyed: boolean
    listen(port?: number, hostname?: string, cb?: () => void): void
    close(cb?: (err?: Error | null) => void): void
    onWebSocketConnection(socket: TrackerWebSocket, opts?: object): void
    protected _onRequest(params: TrackerParams, cb: RequestCallback): void
    protected _onAnnounce(params: TrackerParams, cb: RequestCallback): void
    protected _onScrape(params: TrackerParams, cb: RequestCallback): void
    protected _onWebSocketRequest(socket: TrackerWebSocket, opts: object, params: string | Buffer): void
  }
}

declare module 'bittorrent-tracker' {
  import { EventEmitter } from 'node:events'

  export interface ClientOptions {
    infoHash: string | Uint8Array
    peerId: string | Uint8Array
    announce: string[]
    port: number
    getAnnounceOpts?: () => Record<string, unknown>
  }

  export interface AnnounceData {
    announce: string
    complete: number
    incomplete: number
  }

  export interface ScrapeData extends AnnounceData {
    infoHash: string
    downloaded: number
  }

  export default class Client extends EventEmitter {
    constructor(opts: ClientOptions)
    start(opts?: Record<string, unknown>): void
    stop(opts?: Record<string, unknown>): void
    complete(opts?: Record<string, unknown>): void
    update(opts?: Record<string, unknown>): void
    scrape(opts?: Record<string, unknown>): void
    destroy(cb?: (err?: Error | null) => void): void
    on(event: 'update', listener: (data: AnnounceData) => void): this
    on(event: 'scrape', listener: (data: ScrapeData) => void): this
    on(event: 'peer', listener: (peer: string | object) => void): this
    on(event: 'error' | 'warning', listener: (err: Error) => void): this
  }
}

/** Only what the tests need from `ws` (a dependency of bittorrent-tracker). */
declare module 'ws' {
  import { EventEmitter } from 'node:events'
  export default class WebSocket extends EventEmitter {
    constructor(url: string, opts?: { localAddress?: string; handshakeTimeout?: number; headers?: Record<string, string> })
    static readonly OPEN: number
    readyState: number
    send(data: string | Buffer, cb?: (err?: Error) => void): void
    close(code?: number): void
    terminate(): void
  }
}
