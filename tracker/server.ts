import { createSocket, type Socket } from 'node:dgram'
import { createServer, type Server as HttpServer } from 'node:http'
import { isIP } from 'node:net'
import { DsyncError, ExitCode, describeErrno } from '../src/errors.js'
import { plainAddress } from '../src/shared/address.js'
import { makeContext, type TrackerContext } from './context.js'
import { handleHttp } from './http.js'
import type { TrackerEvent, TrackerOptions } from './options.js'
import { Policy } from './policy.js'
import type { TrackerStats } from './stats.js'
import type { SwarmStore } from './swarm-store.js'
import { attachUdp } from './udp.js'
import { handleUpgrade, WsSignalling } from './ws.js'

export interface Tracker {
  address: string
  port: number
  store: SwarmStore
  stats: TrackerStats
  policy: Policy
  /** Rereads allowlist and keys; on error keeps the lists in force and reports it. */
  reload(): void
  /** Runs the pruning pass now (it also runs on a timer). */
  prune(): void
  close(): Promise<void>
}

export async function startTracker(opts: TrackerOptions): Promise<Tracker> {
  if (!opts.http && !opts.udp && !opts.ws) throw new DsyncError(ExitCode.usage, 'tracker.noTransport')
  if (opts.listen !== undefined && isIP(opts.listen) === 0) {
    throw new DsyncError(ExitCode.usage, 'tracker.badListen', { address: opts.listen })
  }
  const emit = opts.onEvent ?? (() => {})
  const policy = new Policy(opts.policy)
  const loaded = policy.load()
  for (const w of loaded.warnings) emit({ type: 'warning', message: w })
  let ws: WsSignalling | null = null
  const ctx = makeContext(opts, policy, emit, () => ws?.counts() ?? { torrents: 0, peers: 0 })
  if (opts.ws) {
    const signalling = new WsSignalling(ctx)
    ctx.wsScrape = h => signalling.scrapeOne(h)
    ws = signalling
  }
  const http = opts.http || opts.ws ? httpFront(ctx, opts.http, ws) : null
  const bound = await bindAll(opts, http, sock => attachUdp(sock, ctx))
  const prune = (): void => {
    ctx.store.prune(ctx.peerTimeoutMs)
    ws?.prune()
    ctx.limiter.sweep()
    ctx.sweepRefusals()
  }
  const timers = [
    setInterval(prune, Math.max(500, Math.min(60_000, ctx.peerTimeoutMs / 2))),
    setInterval(() => ctx.stats.sample(), 5_000),
  ]
  for (const t of timers) t.unref()
  ctx.stats.sample()
  const transports = [opts.http && 'http', opts.udp && 'udp', opts.ws && 'ws'].filter((x): x is string => !!x)
  emit({ type: 'listening', address: bound.address, port: bound.port, transports, private: policy.isPrivate, torrents: loaded.torrents, keys: loaded.keys })
  return {
    address: bound.address, port: bound.port, store: ctx.store, stats: ctx.stats, policy, prune,
    reload: () => reload(ctx, ws, emit),
    async close() {
      for (const t of timers) clearInterval(t)
      bound.udp?.close()
      if (ws) await new Promise<void>(resolve => ws!.close(() => resolve()))
      if (http) {
        await new Promise<void>(resolve => {
          http.close(() => resolve())
          http.closeAllConnections()
        })
      }
    },
  }
}

/**
 * The HTTP server for announce/scrape/stats and the WebSocket upgrade, on one port. A
 * disallowed address is refused before a byte is read (unless the peer is our proxy, whose
 * client only the request's headers name).
 */
function httpFront(ctx: TrackerContext, serveHttp: boolean, ws: WsSignalling | null): HttpServer {
  const http = createServer({ maxHeaderSize: 8192, requestTimeout: 15_000, headersTimeout: 10_000, keepAliveTimeout: 5_000 })
  http.maxConnections = 16_384
  http.on('connection', socket => {
    const address = plainAddress(socket.remoteAddress ?? '')
    if (ctx.proxies?.restricted && ctx.proxies.allows(address)) return
    if (ctx.admit('http', address, false)) socket.destroy()
  })
  http.on('request', (req, res) => {
    if (!serveHttp) {
      res.statusCode = 404
      return void res.end('not found\n')
    }
    handleHttp(ctx, req, res)
  })
  http.on('upgrade', (req, socket, head) => handleUpgrade(ctx, ws, req, socket, head))
  return http
}

/** Rereads allowlist and keys; swarms of torrents no longer allowed are dropped. */
function reload(ctx: TrackerContext, ws: WsSignalling | null, emit: (e: TrackerEvent) => void): void {
  try {
    const r = ctx.policy.load()
    for (const w of r.warnings) emit({ type: 'warning', message: w })
    const refused = (h: string): boolean => !ctx.policy.allowsTorrent(h)
    const dropped = ctx.store.dropWhere(refused)
    ws?.dropWhere(refused)
    emit({ type: 'reload', torrents: r.torrents, keys: r.keys, dropped })
  } catch (err) {
    emit({ type: 'reloadFailed', reason: (err as Error).message })
  }
}

interface Bound {
  address: string
  port: number
  udp: Socket | null
}

/**
 * TCP and UDP on one port number. With port 0 the kernel picks the TCP port and UDP must
 * get the same one, which another program may hold: then both are retried on a new port.
 */
async function bindAll(opts: TrackerOptions, http: HttpServer | null, onUdp: (s: Socket) => void): Promise<Bound> {
  const addresses = opts.listen !== undefined ? [opts.listen] : ['::', '0.0.0.0']
  for (let a = 0; a < addresses.length; a++) {
    const address = addresses[a]
    for (let attempt = 0; ; attempt++) {
      try {
        const port = http ? await listenTcp(http, address, opts.port) : opts.port
        let udp: Socket | null = null
        if (opts.udp) {
          try {
            udp = await bindUdp(address, port)
          } catch (err) {
            http?.close()
            throw Object.assign(err as Error, { transport: 'udp' })
          }
          onUdp(udp)
        }
        const actualPort = http ? port : (udp!.address().port)
        return { address, port: actualPort, udp }
      } catch (err) {
        const e = err as NodeJS.ErrnoException & { transport?: string }
        if (opts.port === 0 && e.code === 'EADDRINUSE' && attempt < 20) continue
        const noV6 = e.code === 'EAFNOSUPPORT' || e.code === 'EADDRNOTAVAIL'
        if (noV6 && a < addresses.length - 1) break
        const shown = address.includes(':') ? `[${address}]` : address
        if (e.code === 'EADDRINUSE') {
          throw new DsyncError(ExitCode.network, 'tracker.portInUse', { address: shown, port: opts.port, transport: e.transport ?? 'tcp' })
        }
        throw new DsyncError(ExitCode.network, 'tracker.cannotListen', {
          address: shown, port: opts.port, reason: e.code ? describeErrno(e) : e.message,
        })
      }
    }
  }
  throw new Error('unreachable')
}

function listenTcp(server: HttpServer, address: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err)
    server.once('error', onError)
    server.listen({ port, host: address, exclusive: true }, () => {
      server.off('error', onError)
      const a = server.address()
      resolve(typeof a === 'object' && a ? a.port : port)
    })
  })
}

function bindUdp(address: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({ type: isIP(address) === 6 ? 'udp6' : 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 })
    socket.once('error', err => {
      socket.close()
      reject(err)
    })
    socket.bind({ port, address, exclusive: true }, () => {
      socket.removeAllListeners('error')
      // A send to a vanished client can fail; the tracker carries on.
      socket.on('error', () => {})
      resolve(socket)
    })
  })
}
