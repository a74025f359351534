import { createServer, type Server, type Socket } from 'node:net'
import type { Firewall } from '../config/dtp-config.js'
import { plainAddress } from '../shared/address.js'
import { ConnectionWatch } from './connection-watch.js'
import type { HostLimits } from './limits.js'

/** The first byte of a BitTorrent handshake: the length of "BitTorrent protocol". */
const PEER_WIRE_FIRST_BYTE = 0x13

export interface ListenerHandlers {
  peerWire(socket: Socket, remote: string): void
  http(socket: Socket): void
  refused(remote: string): void
  /** A connection closed by a limit (too many from its address, too slow, silent). */
  limited(address: string, reason: string): void
}

/**
 * The DTP port: one TCP socket per listen address carrying both the BitTorrent peer wire and
 * HTTP. The allowlist is applied on the accepted socket before anything is read or written
 * (the socket is accepted paused); a denied address sees its connection closed with no byte.
 * Then the first byte tells the two protocols apart.
 */
export class Listener {
  private readonly servers: Server[] = []
  readonly sockets = new Set<Socket>()
  readonly watch: ConnectionWatch

  constructor(private firewall: Firewall, limits: HostLimits, private readonly handlers: ListenerHandlers) {
    this.watch = new ConnectionWatch(limits, handlers.limited)
  }

  setFirewall(fw: Firewall): void {
    this.firewall = fw
    // Connections already open from addresses no longer allowed go too.
    for (const s of this.sockets) if (!fw.allows(s.remoteAddress ?? '')) s.destroy()
  }

  async listen(addresses: string[], port: number): Promise<string[]> {
    const hosts = addresses.length > 0 ? addresses : [undefined]
    const bound: string[] = []
    for (const host of hosts) {
      const server = createServer({ pauseOnConnect: true, noDelay: true }, socket => this.accept(socket))
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen({ host, port }, () => {
          server.off('error', reject)
          resolve()
        })
      })
      this.servers.push(server)
      const a = server.address()
      if (a && typeof a === 'object') bound.push(a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`)
    }
    return bound
  }

  private accept(socket: Socket): void {
    const remote = socket.remoteAddress ?? ''
    if (!this.firewall.allows(remote)) {
      // Reset rather than FIN: nothing at all comes back from this port.
      socket.resetAndDestroy()
      this.handlers.refused(remote)
      return
    }
    const refusal = this.watch.admit(socket)
    if (refusal) {
      socket.resetAndDestroy()
      this.handlers.limited(remote, refusal)
      return
    }
    this.sockets.add(socket)
    socket.once('close', () => this.sockets.delete(socket))
    socket.on('error', () => socket.destroy())
    // The first byte, like the rest of the head, must come within the header timeout (watch).
    socket.once('data', (chunk: Buffer) => {
      socket.pause()
      socket.unshift(chunk)
      if (chunk[0] === PEER_WIRE_FIRST_BYTE) this.handlers.peerWire(socket, formatRemote(socket))
      else this.handlers.http(socket)
    })
    socket.resume()
  }

  async close(): Promise<void> {
    this.watch.stop()
    for (const s of this.sockets) s.destroy()
    await Promise.all(this.servers.map(s => new Promise<void>(resolve => s.close(() => resolve()))))
    this.servers.length = 0
  }
}

export function formatRemote(socket: Socket): string {
  const addr = plainAddress(socket.remoteAddress ?? '?')
  return addr.includes(':') ? `[${addr}]:${socket.remotePort}` : `${addr}:${socket.remotePort}`
}
