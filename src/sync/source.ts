import { readFileSync } from 'node:fs'
import { SETTINGS } from '../config/defaults.js'
import { isRepoName } from '../config/repo-config.js'
import { DsyncError, ExitCode, fsError } from '../errors.js'
import { parseAddress, type PeerAddress } from '../swarm/address.js'
import { parseBtpk, resolveBtpk, type DhtLookupOptions } from './bep46.js'
import { resolveDtpHost } from './dtp-host.js'
import { httpGet } from './http-get.js'
import { TORRENT_CAP, type ResolvedSource } from './resolved-source.js'

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
