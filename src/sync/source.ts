import { readFileSync } from 'node:fs'
import { SETTINGS } from '../config/defaults.js'
import { isRepoName } from '../config/repo-config.js'
import { DsyncError, ExitCode, fsError } from '../errors.js'
import { formatAddress, parseAddress, type PeerAddress } from '../swarm/address.js'
import { RECORD_CAP } from '../generation/record.js'
import { parseBtpk, resolveBtpk, type DhtLookupOptions } from './bep46.js'
import { httpGet } from './http-get.js'

/** Largest .torrent or info dict accepted (a 1M-file repository's is about 100 MB). */
export const TORRENT_CAP = 256 << 20

/** What a SOURCE argument or a dsync-url= value tells us before any peer is contacted. */
export interface ResolvedSource {
  source: string
  infoHash: string
  /** The .torrent bytes, when the source had them (a file, a URL, a DTP host). */
  torrent?: Buffer
  peers: PeerAddress[]
  trackers: string[]
  /** A DTP host's welcome message, from its HTTP API. */
  motd?: { host: string; text: string }
  /** A DTP host's signed generation record (docs/SCALE.md), and the repository it was asked for. */
  record?: Buffer
  repo?: string
  /** The host's HTTP base for this repository (`http://HOST:PORT/REPO/`): deltas are fetched there. */
  baseUrl?: string
  /**
   * A host with a record: the .torrent is fetched only if the delta chain cannot be used
   * (at 200k files it is 26 MB, the bulk of an update's bytes before deltas).
   */
  fetchTorrent?: () => Promise<Buffer>
  /** Bytes fetched over HTTP so far for this source (info, record). */
  httpBytes: number
  /** The publisher key a BEP 46 link names: pinned for this pull. */
  key?: string
}

/**
 * magnet:?xt=urn:btih:…, dtp://HOST[:PORT]/REPO (the host's HTTP API on the DTP port gives
 * the torrent; the host itself is a peer), an http(s) URL of a .torrent, or a .torrent path.
 */
export async function resolveSource(
  source: string, infoHashOf: (torrent: Buffer, from: string) => string, dht: DhtLookupOptions = {}, torrentNeeded = false,
): Promise<ResolvedSource> {
  const btpk = parseBtpk(source)
  if (btpk) return resolveBtpk(source, btpk, dht, infoHashOf)
  if (source.startsWith('magnet:')) return parseMagnet(source)
  if (source.startsWith('dtp://')) {
    const m = /^dtp:\/\/(\[[0-9a-fA-F:.]+\]|[^/:[\]]+)(?::(\d+))?\/([^/]+)\/?$/.exec(source)
    const addr = m && parseAddress(`${m[1]}:${m[2] ?? SETTINGS.port.default}`)
    if (!m || !addr || !isRepoName(m[3])) throw new DsyncError(ExitCode.usage, 'sync.badSource', { source })
    const repo = m[3]
    // GET /REPO/ names the generation and carries the welcome message; then the .torrent.
    const base = `http://${m[1]}:${addr.port}/${encodeURIComponent(repo)}/`
    return resolveDtpHost(source, base, repo, addr, infoHashOf, dht.localAddress, torrentNeeded)
  }
  if (/^https?:\/\//.test(source)) {
    const torrent = await httpGet(source, TORRENT_CAP, '.torrent', undefined, dht.localAddress)
    return { source, infoHash: infoHashOf(torrent, source), torrent, peers: [], trackers: [], httpBytes: torrent.length }
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source)) throw new DsyncError(ExitCode.usage, 'sync.badSource', { source })
  let torrent: Buffer
  try {
    torrent = readFileSync(source)
  } catch (err) {
    throw fsError(err, source, 'read')
  }
  if (torrent.length > TORRENT_CAP) throw new DsyncError(ExitCode.badData, 'sync.tooLarge', { what: '.torrent', from: source, cap: TORRENT_CAP })
  return { source, infoHash: infoHashOf(torrent, source), torrent, peers: [], trackers: [], httpBytes: 0 }
}

/**
 * `GET /REPO/` names the generation and carries the welcome message. A host with a signed
 * record: the record, and the torrent later if needed; without: the .torrent now, as before.
 * `torrentNeeded` (a bootstrap: no delta route without DEST's data.dsync) asks for the .torrent
 * at once, with the info, at the path hosts serve it on.
 */
export async function resolveDtpHost(
  source: string, base: string, repo: string, addr: PeerAddress, infoHashOf: (torrent: Buffer, from: string) => string,
  localAddress?: string, torrentNeeded = false,
): Promise<ResolvedSource> {
  // Every request leaves from --bind: a host may allow only that address.
  const get = (url: string, cap: number, what: string) => httpGet(url, cap, what, undefined, localAddress)
  // The record is asked for at once with the info, at the path hosts serve it on: a pull needs
  // it next, and a second round trip after the first is what a far host costs. A host without
  // one answers 404, and the info then says so; any failure here is only a missed head start.
  const recordUrl = new URL('generation', base).toString()
  const early = get(recordUrl, RECORD_CAP, 'generation record').catch(() => undefined)
  // A bootstrap's .torrent (3.5 MB for 20,000 files, 14 ms at a 200 Mbit/s host per MB) was
  // asked for only after the record's checks and the full route's modules had loaded: it now
  // arrives while they load. Its failure is reported where it is used, if it is.
  const guessUrl = new URL(`${encodeURIComponent(repo)}.torrent`, base).toString()
  const earlyTorrent = torrentNeeded ? get(guessUrl, TORRENT_CAP, '.torrent') : undefined
  earlyTorrent?.catch(() => undefined)
  const infoBody = await get(base, 1 << 20, 'repository info')
  const info = parseInfoJson(infoBody, base)
  const url = new URL(info.torrent ?? `${encodeURIComponent(repo)}.torrent`, base).toString()
  const getTorrent = () => (url === guessUrl && earlyTorrent) || get(url, TORRENT_CAP, '.torrent')
  const motd = typeof info.motd === 'string' && info.motd !== '' ? { host: formatAddress(addr), text: info.motd } : undefined
  // The other hosts this one knows (its peers= and what its peers told it): every one is dialled.
  const common = { source, peers: [addr, ...info.hosts], trackers: [], motd, repo, baseUrl: base }
  if (info.record && info.infoHash) {
    const named = new URL(info.record, base).toString()
    const record = (named === recordUrl ? await early : undefined) ?? await get(named, RECORD_CAP, 'generation record')
    const resolved: ResolvedSource = { ...common, infoHash: info.infoHash, record, httpBytes: infoBody.length + record.length }
    resolved.fetchTorrent = async () => {
      const torrent = await getTorrent()
      resolved.httpBytes += torrent.length
      const hash = infoHashOf(torrent, url)
      if (hash !== resolved.infoHash) throw new DsyncError(ExitCode.badData, 'sync.badTorrent', { from: url, reason: `infohash ${hash}, expected ${resolved.infoHash}` })
      return torrent
    }
    return resolved
  }
  const torrent = await getTorrent()
  return { ...common, infoHash: infoHashOf(torrent, url), torrent, httpBytes: infoBody.length + torrent.length }
}

interface InfoJson {
  torrent?: string
  motd?: unknown
  record?: string
  infoHash?: string
  hosts: PeerAddress[]
}

/** A host naming more other hosts than this is not believed beyond them. */
const MAX_INFO_HOSTS = 200

function parseInfoJson(body: Buffer, url: string): InfoJson {
  try {
    const v = JSON.parse(body.toString('utf8')) as unknown
    if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>
      const str = (x: unknown) => (typeof x === 'string' ? x : undefined)
      const hash = str(o.infoHash)
      const hosts = (Array.isArray(o.hosts) ? o.hosts : []).slice(0, MAX_INFO_HOSTS)
        .map(h => (typeof h === 'string' ? parseAddress(h, SETTINGS.port.default) : undefined)).filter((a): a is PeerAddress => a !== undefined)
      return { torrent: str(o.torrent), motd: o.motd, record: str(o.record), infoHash: hash && /^[0-9a-f]{40}$/.test(hash) ? hash : undefined, hosts }
    }
  } catch {
    // fall through: not a DTP host's answer
  }
  throw new DsyncError(ExitCode.network, 'sync.fetchFailed', { url, reason: 'not a DTP host (no repository info)' })
}

export function parseMagnet(source: string): ResolvedSource {
  const params = new URLSearchParams(source.slice(source.indexOf('?') + 1))
  let infoHash: string | undefined
  for (const xt of params.getAll('xt')) {
    const m = /^urn:btih:([0-9a-fA-F]{40}|[A-Za-z2-7]{32})$/.exec(xt)
    if (m) infoHash = m[1].length === 40 ? m[1].toLowerCase() : base32ToHex(m[1])
  }
  if (!infoHash) throw new DsyncError(ExitCode.usage, 'sync.badSource', { source })
  const peers = params.getAll('x.pe').map(p => parseAddress(p)).filter((p): p is PeerAddress => p !== undefined)
  return { source, infoHash, peers, trackers: params.getAll('tr'), httpBytes: 0 }
}

function base32ToHex(s: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = ''
  for (const c of s.toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0')
  let hex = ''
  for (let i = 0; i + 4 <= bits.length; i += 4) hex += parseInt(bits.slice(i, i + 4), 2).toString(16)
  return hex
}
