import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { METRICS_CONTENT_TYPE, renderMetrics } from './metrics.js'
import { statusPageRoute } from './status-page.js'
import type { LoadedRecord } from './record-loader.js'
import type { Seeder } from './seeder.js'
import type { HostStatus } from './status.js'

export interface HttpSources {
  seeder(repo: string): Seeder | undefined
  record(repo: string): LoadedRecord | undefined
  status(): HostStatus
  motd(): string
  /** Other hosts of a repository (docs/HOST.md, discovery). */
  hosts(repo: string): string[]
  /**
   * `upload-limit=` for an HTTP answer about `repo` (the first path segment; a name that is no
   * repository gets the host's limit only): undefined when nothing limits it.
   */
  uploadLimit?(repo: string): UploadGate | undefined
  forgetUpload?(repo: string, conn: object): void
}

/** Waits, when limited, until `bytes` may go to `conn` (the token bucket of upload-limit.ts). */
export type UploadGate = (conn: object, bytes: number) => Promise<void> | undefined

/** HTTP bodies pass the upload limit in pieces this size, as peer-wire blocks do (16 KiB each). */
const LIMITED_CHUNK = 64 * 1024

/** The gate of each limited response, set by route(): send() has no other way to know the repository. */
const gates = new WeakMap<ServerResponse, { gate: UploadGate; forget: () => void }>()

/** Where each request's head arrived and each response ended: the header deadline (ConnectionWatch). */
export interface HttpWatch {
  headDone(socket: Socket): void
  expectHead(socket: Socket): void
}

/** A request path that is not valid percent-encoding (`/%ZZ`): the client's mistake, a 400. */
class BadUrlError extends Error {}

/**
 * What a DTP user fetches over plain HTTP on the DTP port (docs/HOST.md lists the routes):
 * `dtp://HOST[:PORT]/REPO` resolves through `GET /REPO/` (JSON naming the infohash, magnet
 * and the URLs of the .torrent and data.dsync), plus the motd and the status.
 * The server never listens itself: the listener hands it sockets that passed the allowlist.
 */
export function createHttpApi(src: HttpSources, watch: HttpWatch, idleTimeoutMs: () => number): Server {
  const server = createServer((req, res) => {
    const socket = req.socket
    watch.headDone(socket)
    // A client that stops reading a response is dropped after the idle timeout.
    socket.setTimeout(idleTimeoutMs())
    // The next request on a kept-alive connection has the same deadline for its head.
    res.once('finish', () => watch.expectHead(socket))
    try {
      route(src, req, res)
    } catch (err) {
      if (err instanceof BadUrlError) send(res, 400, 'text/plain; charset=utf-8', 'malformed URL\n')
      else send(res, 500, 'text/plain; charset=utf-8', `${(err as Error).message}\n`)
    }
  })
  // Only this one of Node's timeouts works on sockets handed over without listen().
  server.keepAliveTimeout = 5000
  return server
}

export function handOver(server: Server, socket: Socket): void {
  server.emit('connection', socket)
  socket.resume()
}

function route(src: HttpSources, req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD')
    return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n')
  }
  const { pathname, parts, query } = parsePath(req.url ?? '/')
  // The .torrent, data.dsync, deltas and shards share the uplink with peer wire: a mirror's
  // upload-limit= covers them too (a 1M-file data.dsync is 150 MB).
  const repo = parts[0] ?? ''
  const gate = src.uploadLimit?.(repo)
  if (gate) gates.set(res, { gate, forget: () => src.forgetUpload?.(repo, res) })
  const page = statusPageRoute(pathname, query, src.status, req.headers['accept-language'])
  if (page) {
    for (const [k, v] of Object.entries(page.headers)) res.setHeader(k, v)
    return send(res, 200, page.type, page.body)
  }
  // Exactly /metrics: /metrics/ stays the info of a repository named "metrics".
  if (pathname === '/metrics') return send(res, 200, METRICS_CONTENT_TYPE, renderMetrics(src.status()))
  if (parts.length === 1 && parts[0] === 'status.json') return send(res, 200, 'application/json', JSON.stringify(src.status()) + '\n')
  if (parts.length === 1 && parts[0] === 'motd') {
    const motd = src.motd()
    return motd === '' ? send(res, 404, 'text/plain; charset=utf-8', 'no welcome message\n') : send(res, 200, 'text/plain; charset=utf-8', motd)
  }
  // /REPO.torrent is accepted beside /REPO/REPO.torrent: it is what users type.
  if (parts.length === 1 && parts[0].endsWith('.torrent')) return repoFile(src, res, parts[0].slice(0, -8), 'torrent')
  if (parts.length === 1) return repoFile(src, res, parts[0], 'info')
  if (parts.length === 2) {
    const [repo, file] = parts
    if (file === `${repo}.torrent`) return repoFile(src, res, repo, 'torrent')
    if (file === 'data.dsync') return repoFile(src, res, repo, 'manifest')
    if (file === 'magnet' || file === `${repo}.magnet`) return repoFile(src, res, repo, 'magnet')
    if (file === 'info.json') return repoFile(src, res, repo, 'info')
    if (file === 'generation') return recordFile(src, res, repo)
  }
  if (parts.length === 3 && parts[1] === 'deltas') return deltaFile(src, res, parts[0], parts[2])
  if (parts.length === 3 && parts[1] === 'shards') return shardFile(src, res, parts[0], parts[2])
  send(res, 404, 'text/plain; charset=utf-8', 'not found\n')
}

function parsePath(raw: string): { pathname: string; parts: string[]; query: URLSearchParams } {
  try {
    const { pathname, searchParams } = new URL(raw, 'http://dtp.invalid')
    return { pathname, parts: pathname.split('/').filter(p => p !== '').map(decodeURIComponent), query: searchParams }
  } catch {
    throw new BadUrlError()
  }
}

function repoFile(src: HttpSources, res: ServerResponse, repo: string, what: 'torrent' | 'manifest' | 'magnet' | 'info'): void {
  const seeder = src.seeder(repo)
  if (!seeder) return send(res, 404, 'text/plain; charset=utf-8', `no repository "${repo}" here\n`)
  const g = seeder.gen
  const base = `/${encodeURIComponent(repo)}`
  switch (what) {
    case 'torrent': return send(res, 200, 'application/x-bittorrent', g.torrent, `${repo}.torrent`)
    case 'manifest': return send(res, 200, 'application/octet-stream', g.manifest, 'data.dsync')
    case 'magnet': return send(res, 200, 'text/plain; charset=utf-8', g.magnet + '\n')
    case 'info': return send(res, 200, 'application/json', JSON.stringify({
      repo, infoHash: g.infoHash, generation: g.digest, magnet: g.magnet,
      torrent: `${base}/${encodeURIComponent(repo)}.torrent`, manifest: `${base}/data.dsync`,
      files: g.files, bytes: g.bytes, pieceLength: g.pieceLength, motd: src.motd(), hosts: src.hosts(repo),
      ...recordInfo(src.record(repo)?.record?.seq, base),
      ...(g.shards ? { shards: g.shards.map(s => ({ infoHash: s.infoHash, torrent: `${base}/shards/${s.infoHash}.torrent`, files: s.files, bytes: s.bytes })) } : {}),
    }) + '\n')
  }
}

/** info.json names the signed record when the host has one for this generation. */
function recordInfo(seq: number | undefined, base: string): { record?: string; seq?: number } {
  return seq === undefined ? {} : { record: `${base}/generation`, seq }
}

/** GET /REPO/generation: the signed generation record (docs/SCALE.md). */
function recordFile(src: HttpSources, res: ServerResponse, repo: string): void {
  const record = src.record(repo)?.record
  if (!record) return send(res, 404, 'text/plain; charset=utf-8', `no generation record for "${repo}" here\n`)
  send(res, 200, 'text/plain; charset=utf-8', record.bytes)
}

/** GET /REPO/deltas/SEQ.delta and SEQ.torrent: the deltas the record offers. */
function deltaFile(src: HttpSources, res: ServerResponse, repo: string, name: string): void {
  const m = /^(\d{1,15})\.(delta|torrent)$/.exec(name)
  const offered = m ? src.record(repo)?.deltas.get(Number(m[1])) : undefined
  const body = m?.[2] === 'delta' ? offered?.delta : offered?.torrent
  if (!body) return send(res, 404, 'text/plain; charset=utf-8', 'no such delta here\n')
  send(res, 200, m![2] === 'delta' ? 'text/plain; charset=utf-8' : 'application/x-bittorrent', body)
}

/** `/REPO/shards/<infohash>.torrent`: one shard of a sharded repository (docs/SCALE.md). */
function shardFile(src: HttpSources, res: ServerResponse, repo: string, file: string): void {
  const shard = src.seeder(repo)?.gen.shards?.find(s => file === `${s.infoHash}.torrent`)
  if (!shard) return send(res, 404, 'text/plain; charset=utf-8', 'not found\n')
  send(res, 200, 'application/x-bittorrent', shard.torrent, file)
}

function send(res: ServerResponse, code: number, type: string, body: string | Buffer, filename?: string): void {
  res.statusCode = code
  res.setHeader('Content-Type', type)
  res.setHeader('Content-Length', Buffer.byteLength(body))
  res.setHeader('Cache-Control', 'no-cache')
  if (filename) res.setHeader('Content-Disposition', `attachment; filename="${filename}"`)
  const limited = gates.get(res)
  if (res.req.method === 'HEAD' || !limited || Buffer.byteLength(body) <= LIMITED_CHUNK) return void res.end(res.req.method === 'HEAD' ? undefined : body)
  res.once('close', limited.forget)
  sendLimited(res, typeof body === 'string' ? Buffer.from(body) : body, limited.gate).catch(err => res.destroy(err as Error))
}

/** Writes `body` a chunk at a time, each after the upload limit grants it and the socket drained. */
async function sendLimited(res: ServerResponse, body: Buffer, gate: UploadGate): Promise<void> {
  for (let off = 0; off < body.length && !res.destroyed; off += LIMITED_CHUNK) {
    const chunk = body.subarray(off, off + LIMITED_CHUNK)
    await gate(res, chunk.length)
    if (res.destroyed) return
    if (!res.write(chunk)) await drainedOrClosed(res)
  }
  if (!res.destroyed) res.end()
}

function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise(resume => {
    const done = () => {
      res.off('drain', done)
      res.off('close', done)
      resume()
    }
    res.on('drain', done)
    res.on('close', done)
  })
}
