import { randomBytes } from 'node:crypto'
import { createServer, type Server, type Socket } from 'node:net'
import { after } from 'node:test'
import Wire from 'bittorrent-protocol'
import { metadataExtension } from '../src/host/wire-extensions.js'

/**
 * A hostile BitTorrent peer on a loopback address, for what no honest client would send:
 * - `info`: the raw info dict it serves over BEP 9 (ut_metadata, with the host's own
 *   serving code), so a magnet link naming sha1(info) gets exactly these bytes;
 * - `claimSize`: a metadata_size to announce instead of the real one;
 * - `flood`: after the handshake, one piece message claiming `flood` bytes, streamed as
 *   fast as the socket takes them (never requested by anyone);
 * - `content`: the torrent's bytes (pads included) it answers block requests from, whatever
 *   they are: a seeder that never checks what it serves (bit rot, a tampered copy).
 * - `blocksPerConnection`: with `content`, answers only this many block requests on each
 *   connection, then closes it: a peer that delivers a little, never a whole piece, and comes back.
 * Counts what it saw, so a test can say what the client asked for and what it let through.
 */
export interface FakePeerOptions {
  info?: Buffer
  claimSize?: number
  flood?: number
  content?: { bytes: Buffer; pieceLength: number }
  blocksPerConnection?: number
}

export class FakePeer {
  /** ut_metadata requests received. */
  metadataRequests = 0
  /** Bytes written by the flood before the client closed the connection (or it ended). */
  floodWritten = 0
  /** The flood was cut off by the client before all of it went out. */
  floodCut = false
  connections = 0
  /** Block requests answered from `content`. */
  blocksServed = 0
  private readonly sockets = new Set<Socket>()

  private constructor(private readonly server: Server, private readonly opts: FakePeerOptions) {}

  static async start(host: string, opts: FakePeerOptions): Promise<FakePeer> {
    let peer: FakePeer | undefined
    const server = createServer(socket => peer!.accept(socket))
    peer = new FakePeer(server, opts)
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ host, port: 0 }, () => resolve())
    })
    after(() => peer!.close())
    return peer
  }

  get address(): string {
    const a = this.server.address() as { address: string; port: number }
    return `${a.address}:${a.port}`
  }

  private accept(socket: Socket): void {
    this.connections++
    this.sockets.add(socket)
    socket.on('error', () => undefined)
    if (this.opts.flood) return this.flood(socket, this.opts.flood)
    const wire = new Wire('tcpIncoming')
    const counter = this
    if (this.opts.info) {
      const Serve = metadataExtension(this.opts.info)
      class Counting extends Serve {
        constructor(w: Wire) {
          super(w)
          if (counter.opts.claimSize !== undefined) w.extendedHandshake.metadata_size = counter.opts.claimSize
        }

        override onMessage(buf: Uint8Array): void {
          counter.metadataRequests++
          super.onMessage!(buf)
        }
      }
      wire.use(Counting)
    }
    socket.pipe(wire).pipe(socket)
    wire.on('error', () => socket.destroy())
    wire.once('handshake', (infoHash: string) => {
      wire.handshake(infoHash, randomBytes(20), { dht: false, fast: true })
      if (this.opts.content) wire.haveAll()
      wire.unchoke()
    })
    const content = this.opts.content
    if (content) {
      let answered = 0
      const limit = this.opts.blocksPerConnection ?? Infinity
      wire.on('request', (piece: number, offset: number, length: number, respond: (err: Error | null, b?: Buffer) => void) => {
        if (answered >= limit) return
        const start = piece * content.pieceLength + offset
        this.blocksServed++
        respond(null, content.bytes.subarray(start, start + length))
        // Closed once the answer has gone out (a moment later), the rest of the requests unanswered.
        if (++answered === limit) setTimeout(() => socket.destroy(), 100)
      })
    }
  }

  /** Answers the handshake, then streams one unrequested 'piece' message of `total` bytes. */
  private flood(socket: Socket, total: number): void {
    let got = Buffer.alloc(0)
    socket.on('data', d => {
      if (got.length >= 68) return
      got = Buffer.concat([got, d])
      if (got.length < 68) return
      const reserved = Buffer.alloc(8)
      socket.write(Buffer.concat([got.subarray(0, 20), reserved, got.subarray(28, 48), randomBytes(20)]))
      const header = Buffer.alloc(13)
      header.writeUInt32BE(total + 9, 0)
      header[4] = 7 // piece
      socket.write(header)
      const chunk = Buffer.alloc(64 * 1024, 0x5a)
      const pump = () => {
        while (this.floodWritten < total && !socket.destroyed) {
          this.floodWritten += chunk.length
          if (!socket.write(chunk)) return void socket.once('drain', pump)
        }
      }
      socket.once('close', () => (this.floodCut = this.floodWritten < total))
      pump()
    })
  }

  close(): void {
    for (const s of this.sockets) s.destroy()
    this.server.close()
  }
}
