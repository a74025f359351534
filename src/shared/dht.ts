import { createPublicKey, verify } from 'node:crypto'
import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { isIPv6 } from 'node:net'

type PeerAddress = { host: string; port: number }

/**
 * The slice of bittorrent-dht that BEP 44/46 need (mutable items and peer lookups), behind one
 * small interface shared by the host (put) and the client (get, lookup). bittorrent-dht is
 * loaded only when a DHT is asked for (dht=true, a btpk magnet).
 */
interface RawDht {
  listen(port: number, address: string | undefined, cb: () => void): void
  put(opts: MutablePut, cb: (err: Error | null, key: Buffer, n: number) => void): void
  get(key: Buffer, opts: { salt?: Buffer }, cb: (err: Error | null, value: MutableGot | null) => void): void
  lookup(infoHash: string, cb?: (err?: Error) => void): () => void
  announce(infoHash: string, port: number, cb: (err?: Error) => void): void
  address(): { address: string; port: number }
  on(event: 'peer', fn: (peer: { host: string; port: number }, infoHash: Buffer) => void): void
  on(event: 'error' | 'warning', fn: (err: Error) => void): void
  on(event: 'ready', fn: () => void): void
  removeListener(event: string, fn: (...args: never[]) => void): void
  destroy(cb?: () => void): void
}

export interface MutablePut {
  k: Buffer
  salt: Buffer
  seq: number
  v: { ih: Buffer }
  sig: Buffer
}

export interface MutableGot {
  v: { ih?: Uint8Array }
  k: Uint8Array
  seq: number
  sig: Uint8Array
}

export interface DhtOptions {
  /** host:port of nodes to start from; undefined: bittorrent-dht's public defaults. [] means none. */
  bootstrap?: string[]
  address?: string
  port?: number
  /** A host's firewall.conf: datagrams from other addresses are dropped unanswered, none are sent to them. */
  allow?: (address: string) => boolean
}

/** ed25519 as BEP 44 uses it: (signature, signed bytes, public key). */
function verifyEd25519(sig: Uint8Array, msg: Uint8Array, key: Uint8Array): boolean {
  try {
    const jwk = { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(key).toString('base64url') }
    return verify(null, msg, createPublicKey({ key: jwk, format: 'jwk' }), sig)
  } catch {
    return false
  }
}

export class Dht {
  private constructor(readonly raw: RawDht) {}

  static async open(opts: DhtOptions): Promise<Dht> {
    const mod = (await import('bittorrent-dht')) as { default: new (opts: object) => RawDht }
    const socket = opts.allow ? gatedSocket(opts.address, opts.allow) : undefined
    // k-rpc-socket takes `socket` through bittorrent-dht's and k-rpc's options.
    const raw = new mod.default({ bootstrap: opts.bootstrap, verify: verifyEd25519, ...(socket && { socket }) })
    raw.on('error', () => undefined)
    raw.on('warning', () => undefined)
    await new Promise<void>(resolve => raw.listen(opts.port ?? 0, opts.address, resolve))
    return new Dht(raw)
  }

  /** Waits until the routing table has been filled from the bootstrap nodes (or gave up trying). */
  ready(timeoutMs = 10_000): Promise<void> {
    return new Promise(resolve => {
      const timer = setTimeout(resolve, timeoutMs)
      const r = this.raw as unknown as { ready: boolean }
      if (r.ready) {
        clearTimeout(timer)
        return resolve()
      }
      this.raw.on('ready', () => {
        clearTimeout(timer)
        resolve()
      })
    })
  }

  /** Stores a pre-signed BEP 44 mutable item at the nodes closest to sha1(k + salt); resolves with how many took it. */
  put(item: MutablePut): Promise<number> {
    return new Promise((resolve, reject) => this.raw.put(item, (err, _key, n) => (err ? reject(err) : resolve(n))))
  }

  /** The newest mutable item under sha1(key + salt) that verifies, or undefined. */
  get(target: Buffer, salt: Buffer): Promise<MutableGot | undefined> {
    return new Promise((resolve, reject) => this.raw.get(target, { salt }, (err, v) => (err ? reject(err) : resolve(v ?? undefined))))
  }

  /** Peers the DHT knows for an infohash, collected for up to `ms` or until `enough` are found. */
  peers(infoHash: string, ms: number, enough = 8): Promise<PeerAddress[]> {
    return new Promise(resolve => {
      const found = new Map<string, PeerAddress>()
      let done = false
      const finish = () => {
        if (done) return
        done = true
        clearTimeout(timer)
        this.raw.removeListener('peer', onPeer as (...args: never[]) => void)
        abort()
        resolve([...found.values()])
      }
      const onPeer = (peer: { host: string; port: number }, hash: Buffer) => {
        if (Buffer.from(hash).toString('hex') !== infoHash) return
        found.set(`${peer.host}:${peer.port}`, { host: peer.host, port: peer.port })
        if (found.size >= enough) finish()
      }
      this.raw.on('peer', onPeer)
      const abort = this.raw.lookup(infoHash, () => setTimeout(finish, 200))
      const timer = setTimeout(finish, ms)
    })
  }

  announce(infoHash: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => this.raw.announce(infoHash, port, err => (err ? reject(err) : resolve())))
  }

  close(): Promise<void> {
    return new Promise(resolve => this.raw.destroy(() => resolve()))
  }
}

/**
 * The UDP socket the DHT runs on, behind an allowlist: bittorrent-dht answers every query it
 * receives, so a denied address got replies on the DTP port's UDP side. A datagram from a
 * denied address is dropped before the DHT sees it, and nothing is sent to one.
 */
function gatedSocket(address: string | undefined, allow: (address: string) => boolean): UdpSocket {
  const socket = createSocket(address && isIPv6(address) ? 'udp6' : 'udp4')
  const emit = socket.emit.bind(socket) as (event: string | symbol, ...args: unknown[]) => boolean
  socket.emit = ((event: string | symbol, ...args: unknown[]) => {
    if (event === 'message' && !allow((args[1] as { address: string }).address)) return false
    return emit(event, ...args)
  }) as typeof socket.emit
  const send = socket.send.bind(socket) as (...args: unknown[]) => void
  socket.send = ((...args: unknown[]) => {
    // k-rpc-socket's form: (buf, offset, length, port, host, cb)
    const host = args[4]
    if (typeof host === 'string' && !allow(host)) {
      const cb = args[args.length - 1]
      if (typeof cb === 'function') process.nextTick(cb as () => void)
      return
    }
    send(...args)
  }) as typeof socket.send
  return socket
}
