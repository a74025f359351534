import { generationFiles } from '../generation/files.js'
import type { GenerationRecord } from '../generation/record.js'
import { repoFiles } from '../manifest/paths.js'
import { fileSha256 } from '../util/file-sha256.js'
import { readOrUndefined } from '../util/read-file.js'
import { torrentsCurrent } from './unfinished-commit.js'
import type { PullContext, PullResult } from './types.js'

/**
 * The no-change check: DEST applied this very record (its `.dsync/generation` is the host's
 * record byte for byte, and its data.dsync hashes as the record says), so the answer is known
 * without walking the tree or loading the rest of the client: two small HTTP GETs, no scan.
 * The record was checked (signature, key, sequence) by the resolve stage before this runs.
 * Damage done to DEST by hand is not looked for here (`--rescan`, or `dsync verify`).
 * Undefined when there is something to do.
 */
export function alreadyApplied(ctx: PullContext, record: GenerationRecord): PullResult | undefined {
  const { opts } = ctx
  if (opts.rescan || opts.dryRun) return undefined
  // The record first: a few hundred bytes, and it differs on every update.
  if (!record.bytes.equals(readOrUndefined(generationFiles(opts.dest).record) ?? Buffer.alloc(0))) return undefined
  const files = repoFiles(opts.dest, record.repo)
  // Hashed as a stream: at 1M files data.dsync is ~150 MB, which this check never holds.
  if (fileSha256(files.manifest) !== record.manifest.sha256) return undefined
  // A run killed after writing data.dsync but before its torrents: the delta route finishes it.
  if (!torrentsCurrent(files, record)) return undefined
  return unchanged(ctx, record)
}

/** The result of a pull that found DEST at the record's generation. */
export function unchanged(ctx: PullContext, record: GenerationRecord): PullResult {
  return {
    dest: ctx.opts.dest, repo: record.repo, infoHash: record.torrent, upToDate: true, dryRun: false,
    added: 0, changed: 0, removed: 0, filesFetched: 0, filesCopiedLocally: 0, bytesToFetch: 0, bytesReceived: 0, bytesPerHost: {},
    seconds: (Date.now() - ctx.started) / 1000, route: 'deltas', deltas: 0, seq: record.seq,
    verified: (ctx.opts.key ?? ctx.resolved[0].key) !== undefined,
    metadataBytes: ctx.resolved.reduce((sum, s) => sum + s.httpBytes, 0),
  }
}
