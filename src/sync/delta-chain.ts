import { DsyncError, ExitCode } from '../errors.js'
import { parseDelta, sha256Hex, type Delta } from '../generation/delta.js'
import { rmSync } from 'node:fs'
import { applyDeltasToFile, type AppliedToFile, type ListReader } from '../generation/delta-apply.js'
import { deltaFiles } from '../generation/delta-torrent.js'
import type { DeltaRef, GenerationRecord } from '../generation/record.js'
import type { ManifestEntry } from '../manifest/entry.js'
import { httpGet } from './http-get.js'
import { mustMatch } from './record-gate.js'

/** A delta file is a few hundred bytes per changed entry; a bigger one is not fetched. */
const DELTA_CAP = 256 << 20

/**
 * The deltas that lead from the data.dsync whose SHA-256 is `fromSha` to the record's, oldest
 * first; or why there is no such chain (the client then fetches the full generation).
 */
export function findChain(record: GenerationRecord, fromSha: string): DeltaRef[] | string {
  if (fromSha === record.manifest.sha256) return []
  const byFrom = new Map(record.deltas.map(d => [d.from, d]))
  const chain: DeltaRef[] = []
  for (let at = fromSha; at !== record.manifest.sha256;) {
    const next = byFrom.get(at)
    if (!next || chain.length > record.deltas.length) {
      const oldest = record.deltas[0]
      return oldest ? `DEST's data.dsync is not on the chain of the ${record.deltas.length} deltas on offer (oldest from generation before ${oldest.seq})` : 'the host offers no deltas'
    }
    chain.push(next)
    at = next.to
  }
  return chain
}

export interface FetchedChain {
  deltas: Delta[]
  /** Each delta's bytes as fetched (kept under DEST/.dsync/deltas/ for re-serving). */
  raw: Buffer[]
  /** The new data.dsync, rebuilt into a file and checked against the record, and DEST's lines at the deltas' paths. */
  applied: AppliedToFile
  /** Bytes fetched over HTTP for the deltas. */
  bytes: number
}

/**
 * Fetches each delta of the chain from a host's HTTP API, checks it against the record, and
 * applies them to DEST's data.dsync, read as a stream (`previous`, whose SHA-256 must still be
 * `fromSha`), into the file `into`. The result must hash to the record's manifest; when it
 * does not, the file is removed and the pull refused.
 */
export async function followChain(
  baseUrls: string[], chain: DeltaRef[], previous: () => ListReader, fromSha: string, record: GenerationRecord, into: () => string,
  opts: { localAddress?: string; beforeApply?: (deltas: Delta[]) => Promise<void> } = {},
): Promise<FetchedChain> {
  const { localAddress } = opts
  const deltas: Delta[] = []
  const raw: Buffer[] = []
  let bytes = 0
  let url = baseUrls[0]
  for (const ref of chain) {
    const got = await fetchDelta(baseUrls, ref, localAddress)
    url = got.url
    bytes += got.body.length
    try {
      deltas.push(parseDelta(got.body))
    } catch (err) {
      throw new DsyncError(ExitCode.badData, 'generation.mismatch', { from: url, what: `delta ${ref.seq}`, reason: (err as Error).message })
    }
    raw.push(got.body)
  }
  // What else is fetched before the apply is, so that a kill while fetching writes nothing.
  await opts.beforeApply?.(deltas)
  const file = into()
  let applied: AppliedToFile
  try {
    applied = applyDeltasToFile(previous, deltas, file)
  } catch (err) {
    if (err instanceof DsyncError) throw err
    throw new DsyncError(ExitCode.badData, 'generation.mismatch', { from: url, what: `delta ${chain[chain.length - 1].seq}`, reason: (err as Error).message })
  }
  try {
    // DEST's list is read again (hashed to find the chain, then applied): it must not have changed between.
    mustMatch(url, 'DEST data.dsync (read again)', applied.fromSha256, fromSha)
    mustMatch(baseUrls[0], 'data.dsync rebuilt from the deltas', applied.sha256, record.manifest.sha256)
  } catch (err) {
    rmSync(file, { force: true })
    throw err
  }
  return { deltas, raw, applied, bytes }
}

/** Where one needed content comes from: a delta of the chain and the file's index in its torrent. */
export interface DeltaSource {
  /** Index in the chain. */
  delta: number
  /** Index of the file among the delta torrent's non-pad files, as the piece map numbers it. */
  file: number
}

/**
 * For each content the plan must fetch, the newest delta of the chain whose torrent has it at
 * the final size and mtime (hosts refuse pieces of files changed since, so older deltas of the
 * same path are useless). Contents no delta carries are returned as `missing`.
 */
export function sourcesFor(deltas: Delta[], fetch: Map<string, ManifestEntry>, final: Map<string, ManifestEntry>): { found: Map<string, DeltaSource>; missing: string[] } {
  const found = new Map<string, DeltaSource>()
  for (let d = deltas.length - 1; d >= 0; d--) {
    // Index among the torrent's non-pad files, as the piece map numbers them.
    for (const [fileIndex, f] of deltaFiles(deltas[d]).entries()) {
      const now = final.get(f.path)
      if (found.has(f.sha256) || !fetch.has(f.sha256) || !now || now.size !== f.size || now.mtime !== f.mtime || now.sha256?.toString('hex') !== f.sha256) continue
      found.set(f.sha256, { delta: d, file: fileIndex })
    }
  }
  const missing = [...fetch.keys()].filter(hex => !found.has(hex) && fetch.get(hex)!.size > 0)
  return { found, missing }
}

/** A delta host unreachable, or without that delta: the caller falls back to the full generation. */
export class DeltaUnavailable extends Error {}

/**
 * One delta from the first host that has it (a host that pulled its tree through the full
 * route may lack old deltas). Bytes that do not hash as the record says are refused, not
 * routed around: with a pinned key that is an attack or corruption the user must hear about.
 */
export async function fetchDelta(baseUrls: string[], ref: DeltaRef, localAddress?: string): Promise<{ url: string; body: Buffer }> {
  const failures: string[] = []
  for (const base of baseUrls) {
    const url = new URL(`deltas/${ref.seq}.delta`, base).toString()
    let body: Buffer
    try {
      body = await httpGet(url, Math.min(DELTA_CAP, ref.size), 'delta', undefined, localAddress)
    } catch (err) {
      if (!(err instanceof DsyncError) || err.exitCode !== ExitCode.network) throw err
      failures.push(err.message)
      continue
    }
    mustMatch(url, `delta ${ref.seq}`, sha256Hex(body), ref.sha256)
    return { url, body }
  }
  throw new DeltaUnavailable(`delta ${ref.seq} not available (${failures.join('; ')})`)
}
