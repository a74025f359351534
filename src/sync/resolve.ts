import type { DhtLookupOptions } from './bep46.js'
import { gateRecord, mustMatch } from './record-gate.js'
import type { ResolvedSource } from './resolved-source.js'
import { resolveSource } from './source.js'
import { parseTorrent } from './torrent-check.js'
import type { PullContext, PullOptions } from './types.js'

/**
 * Stage 1, resolve: what the sources name (infohash, hosts, trackers, a signed record), the
 * record checked before anything is fetched from peers or written (docs/SCALE.md), and the
 * hosts' welcome messages shown once each.
 */
export async function resolveStage(opts: PullOptions, bootstrap = false): Promise<PullContext> {
  const started = Date.now()
  const resolved = await resolveAll(opts.sources, { bootstrap: opts.dhtBootstrap, localAddress: opts.localAddress }, bootstrap)
  const first = resolved[0]
  const record = gateRecord(first.record, { key: opts.key ?? first.key, dest: opts.dest, from: first.source, repo: first.repo, onWarning: opts.onWarning })
  if (record) mustMatch(first.source, 'torrent', first.infoHash, record.torrent)
  for (const r of resolved.slice(1)) {
    if (r.infoHash !== first.infoHash) opts.onWarning?.(`${r.source}: at another generation (${r.infoHash}); using its host as a peer only if it has ${first.infoHash}`)
  }
  const onMotd = motdOnce(opts)
  for (const r of resolved) if (r.motd) onMotd(r.motd.host, r.motd.text)
  const ctx: PullContext = { opts, resolved, record, started, onMotd }
  // A bootstrap's hosts are dialled now (the infohash is the signed record's, or that of a
  // torrent already checked), so their handshakes happen while the .torrent downloads and is
  // parsed and the full route's modules load: data.dsync's first requests leave at once.
  // (Loaded here, not at the top: a no-change check is the resolve stage alone, without the swarm's modules.)
  if (bootstrap) ctx.swarmAhead = (await import('./open-swarm.js')).openSwarm(ctx, first.infoHash)
  return ctx
}

/** A host's welcome message arrives over HTTP and again over the peer wire: shown once. */
function motdOnce(opts: PullOptions): (host: string, text: string) => void {
  const shown = new Set<string>()
  return (host, text) => {
    if (shown.has(text)) return
    shown.add(text)
    opts.onMotd?.(host, text)
  }
}

/** `torrentNeeded`: the first source's .torrent is asked for at once (the full route takes it from there). */
async function resolveAll(sources: string[], dht: DhtLookupOptions, torrentNeeded: boolean): Promise<ResolvedSource[]> {
  const out: ResolvedSource[] = []
  let lastError: unknown
  for (const s of sources) {
    try {
      out.push(await resolveSource(s, (torrent, from) => parseTorrent(torrent, from).infoHash, dht, torrentNeeded && out.length === 0))
    } catch (err) {
      lastError = err
    }
  }
  if (out.length === 0) throw lastError
  return out
}
