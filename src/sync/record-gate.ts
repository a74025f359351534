import { readFileSync } from 'node:fs'
import { DsyncError, ExitCode } from '../errors.js'
import { generationFiles } from '../generation/files.js'
import { parseRecord, type GenerationRecord } from '../generation/record.js'
import { t } from '../i18n/index.js'

export interface GateOptions {
  /** The pinned publisher key (dsync-key=, --key, or a btpk magnet's): 64 hex digits. */
  key?: string
  dest: string
  /** Where the record came from, for messages. */
  from: string
  /** The repository the source names (dtp://HOST/REPO, a btpk magnet's s=). */
  repo?: string
  onWarning?: (message: string) => void
}

/**
 * The trust decision, taken before anything is written (docs/SCALE.md, "Trust model"). With a
 * pinned key: a record must be there, signed by that key, for the named repository, and not
 * older than the record DEST applied last. Without one: a record must still hold together
 * (signature against its own key), and the user is told the origin is unverified.
 */
export function gateRecord(bytes: Buffer | undefined, opts: GateOptions): GenerationRecord | undefined {
  if (!bytes) {
    if (opts.key) throw new DsyncError(ExitCode.badData, 'generation.noRecord', { from: opts.from })
    return undefined
  }
  let record: GenerationRecord
  try {
    record = parseRecord(bytes)
  } catch (err) {
    throw new DsyncError(ExitCode.badData, 'generation.badRecord', { from: opts.from, reason: (err as Error).message })
  }
  if (opts.repo !== undefined && record.repo !== opts.repo) {
    throw new DsyncError(ExitCode.badData, 'generation.wrongRepo', { from: opts.from, got: record.repo, want: opts.repo })
  }
  if (!opts.key) {
    opts.onWarning?.(t('generation.unverified', { seq: record.seq, key: record.key }))
    return record
  }
  if (record.key !== opts.key.toLowerCase()) {
    throw new DsyncError(ExitCode.badData, 'generation.wrongKey', { from: opts.from, got: record.key, want: opts.key.toLowerCase() })
  }
  const last = lastApplied(opts.dest)
  // Only a record of the same publisher and repository orders against this one.
  if (last && last.key === record.key && last.repo === record.repo) {
    if (record.seq < last.seq || (record.seq === last.seq && !record.bytes.equals(last.bytes))) {
      throw new DsyncError(ExitCode.badData, 'generation.rollback', { from: opts.from, got: record.seq, have: last.seq, dest: opts.dest })
    }
  }
  return record
}

/** The record DEST applied last (written with its data.dsync), if it has a valid one. */
export function lastApplied(dest: string): GenerationRecord | undefined {
  try {
    return parseRecord(readFileSync(generationFiles(dest).record))
  } catch {
    return undefined
  }
}

/** Refuses a torrent, delta or data.dsync that is not the one the record names. */
export function mustMatch(from: string, what: string, got: string, want: string): void {
  if (got !== want) throw new DsyncError(ExitCode.badData, 'generation.mismatch', { from, what, reason: `${got}, record says ${want}` })
}
