import { createHash } from 'node:crypto'
import { isRepoName } from '../config/repo-config.js'
import { DsyncError, ExitCode } from '../errors.js'
import { Dht } from '../shared/dht.js'
import { formatAddress, type PeerAddress } from '../swarm/address.js'
import { resolveDtpHost } from './dtp-host.js'
import type { ResolvedSource } from './resolved-source.js'

export interface DhtLookupOptions {
  /** DHT nodes to start from (host:port); undefined: bittorrent-dht's public defaults. */
  bootstrap?: string[]
  localAddress?: string
  /** How long to collect peers of the named torrent. */
  peerWaitMs?: number
}

/** `magnet:?xs=urn:btpk:<64 hex>&s=<repo>` (BEP 46): the publisher's key and the repository name. */
export function parseBtpk(source: string): { key: string; repo: string } | undefined {
  if (!source.startsWith('magnet:')) return undefined
  const params = new URLSearchParams(source.slice(source.indexOf('?') + 1))
  const key = params.getAll('xs').map(x => /^urn:btpk:([0-9a-fA-F]{64})$/.exec(x)?.[1]).find(k => k !== undefined)
  if (!key) return undefined
  const repo = params.get('s') ?? ''
  if (!isRepoName(repo)) throw new DsyncError(ExitCode.usage, 'sync.badSource', { source })
  return { key: key.toLowerCase(), repo }
}

/**
 * Resolves a BEP 46 name: the mutable item under sha1(key + salt) in the DHT (signature checked
 * by the DHT layer against the key), then peers of the torrent it names, then the signed
 * record over HTTP from the first of them that is a dsync host with a record at least as new
 * as the item. The key from the link is pinned: the record must be signed by it.
 */
export async function resolveBtpk(
  source: string, name: { key: string; repo: string }, opts: DhtLookupOptions, infoHashOf: (torrent: Buffer, from: string) => string,
): Promise<ResolvedSource> {
  const dht = await Dht.open({ bootstrap: opts.bootstrap, address: opts.localAddress })
  try {
    await dht.ready()
    const salt = Buffer.from(name.repo)
    const target = createHash('sha1').update(Buffer.from(name.key, 'hex')).update(salt).digest()
    const item = await dht.get(target, salt).catch(() => undefined)
    const ih = item?.v?.ih ? Buffer.from(item.v.ih) : undefined
    if (!item || !ih || ih.length !== 20 || Buffer.from(item.k).toString('hex') !== name.key) {
      throw new DsyncError(ExitCode.network, 'generation.dhtNotFound', { key: name.key, repo: name.repo, reason: item ? 'malformed item' : 'no answer' })
    }
    const infoHash = ih.toString('hex')
    const peers = await dht.peers(infoHash, opts.peerWaitMs ?? 10_000)
    const resolved = await firstHostWithRecord(source, name.repo, peers, item.seq, infoHashOf, opts.localAddress)
    if (!resolved) {
      throw new DsyncError(ExitCode.network, 'generation.dhtNotFound', {
        key: name.key, repo: name.repo, reason: `no host among ${peers.length} DHT peer(s) of ${infoHash} serves generation ${item.seq} or newer`,
      })
    }
    return { ...resolved, peers, key: name.key }
  } finally {
    await dht.close()
  }
}

async function firstHostWithRecord(
  source: string, repo: string, peers: PeerAddress[], seq: number, infoHashOf: (torrent: Buffer, from: string) => string,
  localAddress?: string,
): Promise<ResolvedSource | undefined> {
  for (const peer of peers) {
    try {
      const r = await resolveDtpHost(source, `http://${formatAddress(peer)}/${encodeURIComponent(repo)}/`, repo, peer, infoHashOf, localAddress)
      // The record's own seq is checked by the pull (signature, key, rollback); here only "new enough".
      const m = r.record && /\nseq (\d+)\n/.exec(r.record.toString('utf8'))
      if (m && Number(m[1]) >= seq) return r
    } catch {
      // not a dsync host, or unreachable: try the next
    }
  }
  return undefined
}
