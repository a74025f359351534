import { mkdirSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { DsyncError, ExitCode } from '../errors.js'
import { sha256Hex } from '../generation/delta.js'
import { deltaFile, generationFiles } from '../generation/files.js'
import type { GenerationRecord } from '../generation/record.js'
import type { RepoFiles } from '../manifest/paths.js'
import { readTorrentInfo } from '../torrent/read.js'
import { writeFileAtomic } from '../util/atomic-write.js'
import { DeltaUnavailable, fetchDelta } from './delta-chain.js'
import { httpGet } from './http-get.js'
import { readOrUndefined } from './metadata.js'
import { mustMatch } from './record-gate.js'
import { removeStaleShards } from './rebuild-shards.js'
import type { PullContext } from './types.js'

/** A delta torrent is ~20 bytes per piece of changed content; far below this. */
export const DELTA_TORRENT_CAP = 64 << 20

/** Every source host's HTTP base, the chosen one first: any of them may hold a delta. */
export function deltaHosts(ctx: PullContext, first: string): string[] {
  return [...new Set([first, ...ctx.resolved.flatMap(r => (r.baseUrl ? [r.baseUrl] : []))])]
}

/**
 * A DEST that is re-served must offer the deltas its record lists, so a mirror further behind
 * can use this host too: those DEST lacks (it came by the full route, or joined the chain late,
 * or needed no file of a delta's torrent) are fetched, checked against the record, and kept;
 * those the record no longer lists are removed. Small (a few hundred bytes per changed entry);
 * a failure only costs this host its offer, never the pull.
 */
export async function offerDeltas(ctx: PullContext, record: GenerationRecord, baseUrls: string[]): Promise<void> {
  const dest = ctx.opts.dest
  const dir = generationFiles(dest).deltas
  mkdirSync(dir, { recursive: true })
  const listed = new Set(record.deltas.map(d => String(d.seq)))
  for (const name of readdirSync(dir)) {
    const m = /^(\d+)\.(delta|torrent)$/.exec(name)
    if (!m || !listed.has(m[1])) rmSync(join(dir, name), { force: true })
  }
  for (const ref of record.deltas) {
    try {
      if (sha256Hex(readOrUndefined(deltaFile(dest, ref.seq, 'delta')) ?? Buffer.alloc(0)) !== ref.sha256) {
        const { body } = await fetchDelta(baseUrls, ref, ctx.opts.localAddress)
        ctx.extraHttpBytes = (ctx.extraHttpBytes ?? 0) + body.length
        writeFileAtomic(deltaFile(dest, ref.seq, 'delta'), body)
      }
      if (ref.infoHash && torrentHash(readOrUndefined(deltaFile(dest, ref.seq, 'torrent'))) !== ref.infoHash) {
        const { url, bytes: torrent } = await firstAnswer(baseUrls, `deltas/${ref.seq}.torrent`, ctx.opts.localAddress)
        ctx.extraHttpBytes = (ctx.extraHttpBytes ?? 0) + torrent.length
        mustMatch(url, `delta torrent ${ref.seq}`, torrentHash(torrent) ?? '-', ref.infoHash)
        writeFileAtomic(deltaFile(dest, ref.seq, 'torrent'), torrent)
      }
    } catch (err) {
      ctx.opts.onWarning?.(`delta ${ref.seq} not kept for re-serving: ${(err as Error).message}`)
    }
  }
}

/** The first host that answers for a delta torrent; none: the full route takes over. */
export async function firstAnswer(baseUrls: string[], path: string, localAddress?: string): Promise<{ url: string; bytes: Buffer }> {
  const failures: string[] = []
  for (const base of baseUrls) {
    const url = new URL(path, base).toString()
    try {
      return { url, bytes: await httpGet(url, DELTA_TORRENT_CAP, 'delta torrent', undefined, localAddress) }
    } catch (err) {
      if (!(err instanceof DsyncError) || err.exitCode !== ExitCode.network) throw err
      failures.push(err.message)
    }
  }
  throw new DeltaUnavailable(`${path} not available (${failures.join('; ')})`)
}

function torrentHash(bytes: Buffer | undefined): string | undefined {
  try {
    return bytes ? readTorrentInfo(bytes).infoHash : undefined
  } catch {
    return undefined
  }
}

/**
 * After a delta update of a sharded repository, the shard torrents the record names and DEST
 * does not hold yet (unchanged shards keep their infohash and their file), each checked
 * against its infohash; shards no longer named are removed. Throws when one cannot be had:
 * the caller then drops the index torrent rather than leave one naming absent shards. Returns
 * how many were fetched.
 */
export async function fetchShardTorrents(ctx: PullContext, record: GenerationRecord, files: RepoFiles, baseUrls: string[]): Promise<number> {
  mkdirSync(files.shards, { recursive: true })
  let fetched = 0
  for (const ih of record.shards) {
    const file = join(files.shards, `${ih}.torrent`)
    if (torrentHash(readOrUndefined(file)) === ih) continue
    const { url, bytes } = await firstAnswer(baseUrls, `shards/${ih}.torrent`, ctx.opts.localAddress)
    ctx.extraHttpBytes = (ctx.extraHttpBytes ?? 0) + bytes.length
    mustMatch(url, `shard torrent ${ih}`, torrentHash(bytes) ?? '-', ih)
    writeFileAtomic(file, bytes)
    fetched++
  }
  removeStaleShards(files, record.shards)
  return fetched
}
