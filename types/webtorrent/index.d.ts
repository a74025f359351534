// webtorrent 3 ships no types (and @types/webtorrent describes 1.x). Only what dsync uses.
declare module 'webtorrent' {
  import { EventEmitter } from 'node:events'

  namespace WebTorrent {
    interface Options {
      dht?: boolean | object
      lsd?: boolean
      natUpnp?: boolean
      natPmp?: boolean
      utp?: boolean
      tracker?: boolean | object
      webSeeds?: boolean
      torrentPort?: number
      blocklist?: string[]
      maxConns?: number
    }
    interface TorrentOptions {
      path?: string
      announce?: string[]
      deselect?: boolean
      skipVerify?: boolean
      store?: unknown
      private?: boolean
    }
    interface TorrentFile {
      name: string
      path: string
      length: number
      downloaded: number
      select(): void
      deselect(): void
    }
    interface Torrent extends EventEmitter {
      infoHash: string
      name: string
      files: TorrentFile[]
      downloaded: number
      uploaded: number
      received: number
      progress: number
      numPeers: number
      done: boolean
      addPeer(addr: string): boolean
      destroy(cb?: (err?: Error) => void): void
    }
    interface Instance extends EventEmitter {
      torrents: Torrent[]
      add(id: string | Buffer | Uint8Array, opts?: TorrentOptions, onTorrent?: (t: Torrent) => void): Torrent
      seed(input: string | string[] | Buffer, opts?: TorrentOptions & { name?: string }, onSeed?: (t: Torrent) => void): Torrent
      destroy(cb?: (err?: Error) => void): void
    }
  }
  const WebTorrent: { new (opts?: WebTorrent.Options): WebTorrent.Instance; VERSION: string }
  export default WebTorrent
}
