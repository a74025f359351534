import { SETTINGS } from '../config/defaults.js'
import { DsyncError, ExitCode } from '../errors.js'
import { RECORD_CAP } from '../generation/record.js'
import { formatAddress, parseAddress, type PeerAddress } from '../swarm/address.js'
import { httpGet } from './http-get.js'
import { TORRENT_CAP, type ResolvedSource } from './resolved-source.js'

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
