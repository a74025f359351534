import { createSocket, type Socket } from 'node:dgram'
import { createServer, type Server as HttpServer } from 'node:http'
import { isIP } from 'node:net'
import { makeFirewall, type Firewall } from '../src/config/dtp-config.js'
import { DsyncError, ExitCode, describeErrno } from '../src/errors.js'
import { plainAddress } from '../src/shared/address.js'
import { clientAddress } from './address.js'
import { ConnectionIds } from './connection-id.js'
import { handleHttp } from './http.js'
import { Policy, type PolicyOptions } from './policy.js'
import { RateLimiter } from './rate-limit.js'
import { TrackerStats } from './stats.js'
import { SwarmStore } from './swarm-store.js'
import { attachUdp } from './udp.js'
import { WsSignalling } from './ws.js'

export interface TrackerOptions {
  /** 0 picks a free port (the same number for TCP and UDP). */
  port: number
  /** Default `::` (dual stack), falling back to 0.0.0.0 where IPv6 is off. */
  listen?: string
  http: boolean
  udp: boolean
  ws: boolean
  /** Seconds between announces we ask for, and the least we accept. */
  interval: number
  minInterval?: number
  /** Seconds of silence after which a peer is dropped; default twice the interval. */
  peerTimeout?: number
  /** Requests per second per address; 0 turns the limit off. */
  rateLimit: number
  /** Reverse proxies whose X-Forwarded-For (and UDP `ip` field) we believe. */
  trustProxy?: string[]
  policy: PolicyOptions
  onEvent?: (event: TrackerEvent) => void
}

export type TrackerEvent =
  | { type: 'listening'; address: string; port: number; transports: string[]; private: boolean; torrents: number; keys: number }
  | { type: 'reload'; torrents: number; keys: number; dropped: number }
  | { type: 'reloadFailed'; reason: string }
  | { type: 'refused'; transport: string; address: string; reason: string }
  | { type: 'warning'; message: string }

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

const DEFAULT_NUMWANT = 50
const REFUSAL_LOG_MS = 60_000

export async function startTracker(opts: TrackerOptions): Promise<Tracker> {
  if (!opts.http && !opts.udp && !opts.ws) throw new DsyncError(ExitCode.usage, 'tracker.noTransport')
  if (opts.listen !== undefined && isIP(opts.listen) === 0) {
    throw new DsyncError(ExitCode.usage, 'tracker.badListen', { address: opts.listen })
  }
  const emit = opts.onEvent ?? (() => {})
  const policy = new Policy(opts.policy)
  const loaded = policy.load()
  for (const w of loaded.warnings) emit({ type: 'warning', message: w })
  let proxies: Firewall | null = null
  try {
    if (opts.trustProxy?.length) proxies = makeFirewall(opts.trustProxy)
  } catch (err) {
    throw new DsyncError(ExitCode.usage, 'tracker.badOption', { option: '--trust-proxy', reason: (err as Error).message })
  }

  const interval = opts.interval
  const minInterval = opts.minInterval ?? Math.max(1, Math.floor(interval / 2))
  const peerTimeoutMs = (opts.peerTimeout ?? interval * 2) * 1000
  const store = new SwarmStore()
  const limiter = new RateLimiter(opts.rateLimit)
  let ws: WsSignalling | null = null
  const stats = new TrackerStats(store, () => ws?.counts() ?? { torrents: 0, peers: 0 })

  // One log line per (transport, address, reason) a minute: a refused client retries
  // every few seconds and must not flood the log.
  const lastRefusal = new Map<string, number>()
  const onRefused = (transport: string, address: string, reason: string): void => {
    const key = `${transport} ${address} ${reason}`
    const now = Date.now()
    if ((lastRefusal.get(key) ?? 0) > now - REFUSAL_LOG_MS) return
    lastRefusal.set(key, now)
    emit({ type: 'refused', transport, address, reason })
  }

  const common = { store, policy, limiter, stats, proxies, interval, minInterval, defaultNumwant: DEFAULT_NUMWANT, onRefused }
  if (opts.ws) ws = new WsSignalling({ policy, limiter, stats, interval, minInterval, peerTimeoutMs, onRefused })

  let http: HttpServer | null = null
  if (opts.http || opts.ws) {
    http = createServer({ maxHeaderSize: 8192, requestTimeout: 15_000, headersTimeout: 10_000, keepAliveTimeout: 5_000 })
    http.maxConnections = 16_384
    const front = http
    // Refuse disallowed addresses before a byte is read (unless the peer is our proxy,
    // whose client we can only tell from the request's headers).
    front.on('connection', socket => {
      const address = plainAddress(socket.remoteAddress ?? '')
      if (proxies?.restricted && proxies.allows(address)) return
      if (!policy.addressAllowed(address)) {
        stats.refused.address++
        onRefused('http', address, 'address not allowed')
        socket.destroy()
      }
    })
    const httpCtx = { ...common, wsScrape: ws ? (h: string) => ws!.scrapeOne(h) : undefined }
    front.on('request', (req, res) => {
      if (!opts.http) {
        res.statusCode = 404
        return void res.end('not found\n')
      }
      handleHttp(httpCtx, req, res)
    })
    front.on('upgrade', (req, socket, head) => {
      const address = clientAddress(req.socket.remoteAddress ?? '', req.headers['x-forwarded-for'], proxies)
      const path = (req.url ?? '/').split('?')[0]
      const m = path === '/' || path === '/announce' ? [] : /^\/([^/]+)(?:\/announce)?\/?$/.exec(path)
      let status = 0
      if (!ws || !m) status = 404
      else if (!policy.addressAllowed(address)) {
        stats.refused.address++
        onRefused('ws', address, 'address not allowed')
        status = 403
      } else if (!limiter.take(address)) {
        stats.refused.rate++
        status = 429
      } else {
        const refusal = policy.checkKey(m[1])
        if (refusal) {
          stats.refused.passkey++
          onRefused('ws', address, refusal)
          status = 403
        } else if (m[1] !== undefined && !policy.needsPasskey) status = 404
      }
      if (status) {
        socket.end(`HTTP/1.1 ${status} ${status === 403 ? 'Forbidden' : status === 429 ? 'Too Many Requests' : 'Not Found'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
        return
      }
      ws!.ws!.handleUpgrade(req, socket, head, conn => ws!.accept(conn, address))
    })
  }

  const bound = await bindAll(opts, http, sock => attachUdp(sock, { ...common, ids: new ConnectionIds() }))

  const prune = (): void => {
    store.prune(peerTimeoutMs)
    ws?.prune()
    limiter.sweep()
    const cutoff = Date.now() - REFUSAL_LOG_MS
    for (const [k, at] of lastRefusal) if (at < cutoff) lastRefusal.delete(k)
  }
  const pruneTimer = setInterval(prune, Math.max(500, Math.min(60_000, peerTimeoutMs / 2)))
  const sampleTimer = setInterval(() => stats.sample(), 5_000)
  pruneTimer.unref()
  sampleTimer.unref()
  stats.sample()

  const transports = [opts.http && 'http', opts.udp && 'udp', opts.ws && 'ws'].filter((x): x is string => !!x)
  emit({ type: 'listening', address: bound.address, port: bound.port, transports, private: policy.isPrivate, torrents: loaded.torrents, keys: loaded.keys })

  return {
    address: bound.address,
    port: bound.port,
    store,
    stats,
    policy,
    prune,
    reload() {
      try {
        const r = policy.load()
        for (const w of r.warnings) emit({ type: 'warning', message: w })
        const refused = (h: string): boolean => !policy.allowsTorrent(h)
        const dropped = store.dropWhere(refused)
        ws?.dropWhere(refused)
        emit({ type: 'reload', torrents: r.torrents, keys: r.keys, dropped })
      } catch (err) {
        emit({ type: 'reloadFailed', reason: (err as Error).message })
      }
    },
    async close() {
      clearInterval(pruneTimer)
      clearInterval(sampleTimer)
      bound.udp?.close()
      if (ws) await new Promise<void>(resolve => ws!.close(() => resolve()))
      if (http) {
        const h = http
        await new Promise<void>(resolve => {
          h.close(() => resolve())
          h.closeAllConnections()
        })
      }
    },
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
