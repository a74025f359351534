import { EventEmitter } from 'node:events'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { after } from 'node:test'

/**
 * A TCP proxy on a loopback address in front of a real host: bytes pass unchanged both ways,
 * except that while `stallAfter` is set, after client bytes that match `match` (a request),
 * the connection gets only that many more bytes of the host's answer, then nothing (the socket
 * stays open, as with a host that hangs mid-reply). Emits 'stalled' at that point, with how
 * much of the held reply got through: a test kills its client there, in the middle of a
 * transfer it knows is running.
 */
export class StallProxy extends EventEmitter {
  stallAfter: number | undefined
  match: (request: Buffer) => boolean = () => true
  /** Bytes the host sent to clients through the proxy, stalled connections included. */
  forwarded = 0
  private readonly server: Server
  private readonly sockets = new Set<Socket>()

  private constructor(private readonly target: { host: string; port: number }) {
    super()
    this.server = createServer(client => this.accept(client))
  }

  static async start(listenHost: string, target: { host: string; port: number }): Promise<StallProxy> {
    const p = new StallProxy(target)
    await new Promise<void>((resolve, reject) => {
      p.server.once('error', reject)
      p.server.listen({ host: listenHost, port: 0 }, () => resolve())
    })
    after(() => p.close())
    return p
  }

  get address(): string {
    const a = this.server.address() as { address: string; port: number }
    return `${a.address}:${a.port}`
  }

  private accept(client: Socket): void {
    const upstream = connect(this.target)
    this.sockets.add(client).add(upstream)
    const end = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', end).on('close', end)
    upstream.on('error', end).on('close', end)
    let limit: number | undefined
    let sent = 0
    /** Where the held reply began on this connection (keep-alive carries earlier ones). */
    let base = 0
    let stalled = false
    // Checked on every request the client sends (HTTP keep-alive carries several on one
    // connection): the host's answer to a matching one is held after `stallAfter` bytes.
    client.on('data', (chunk: Buffer) => {
      if (limit === undefined && this.stallAfter !== undefined && this.match(chunk)) {
        base = sent
        limit = sent + this.stallAfter
      }
      upstream.write(chunk)
    })
    upstream.on('data', (chunk: Buffer) => {
      if (limit === undefined) {
        this.forwarded += chunk.length
        sent += chunk.length
        client.write(chunk)
        return
      }
      const part = chunk.subarray(0, Math.max(0, limit - sent))
      if (part.length > 0) {
        client.write(part)
        sent += part.length
        this.forwarded += part.length
      }
      // The host has more to say than the limit lets through: the client now waits mid-reply.
      if (part.length < chunk.length && !stalled) {
        stalled = true
        this.emit('stalled', sent - base)
      }
    })
  }

  close(): void {
    for (const s of this.sockets) s.destroy()
    this.server.close()
  }
}
