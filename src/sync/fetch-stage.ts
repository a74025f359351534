import { DsyncError, ExitCode } from '../errors.js'
import { checkFreeSpace, spaceIsLow } from './disk-space.js'
import { FetchList } from './fetch-list.js'
import type { AheadFilter } from './new-folders.js'
import type { Plan } from './plan.js'
import { Staging } from './staging.js'
import type { Route } from './types.js'

export interface Staged {
  staging: Staging
  filesFetched: number
  filesCopiedLocally: number
  bytesReceived: number
  bytesPerHost: Record<string, number>
}

/**
 * Stage 4, stage/fetch: every content the plan places ends up in DEST/.dsync/staging/ under
 * its SHA-256 — already there from an interrupted run, empty, copied from another path in
 * DEST, or downloaded by the route — and reaches the disk before anything is applied.
 */
export async function fetchStage(dest: string, plan: Plan, route: Route, ahead?: AheadFilter): Promise<Staged> {
  const staging = new Staging(dest)
  // Fetched files the stage workers place at their path inside the new folders (new-folders.ts).
  if (ahead) staging.placeAhead(ahead)
  const items = toFetch(plan, staging)
  let bytes = 0
  for (const e of items.values()) bytes += e.size
  checkFreeSpace(staging.dir, dest, bytes + localBytes(plan, staging))
  // A fetched content is staged with the mode and mtime of the path the plan fetches it for
  // (its first use): the apply then skips chmod and utimes where that path takes the staged
  // file itself. A mode without owner read is left to the apply (Staging.metaIdFor).
  staging.wantMeta(plan.fetch)
  let filesCopiedLocally: number
  let transfer: Awaited<ReturnType<Route['fetch']>>
  try {
    filesCopiedLocally = copyLocal(plan, staging)
    transfer = await route.fetch(items, staging)
  } catch (err) {
    // Staged files are kept for the next run only when the live tree does not need the space
    // (ENOSPC, or another writer filled the disk): then partial and verified ones all go.
    if (spaceIsLow(staging.dir)) staging.prune(new Set())
    throw err
  }
  // Power loss, not only SIGKILL: staged data reaches the disk before the commit record.
  // Every placed content is one the plan fetches (or found staged); local copies were
  // fsync'ed as they were made. The keys, not a new hex string per placed file.
  await staging.syncAll(plan.fetch)
  return {
    staging, filesFetched: items.size, filesCopiedLocally,
    bytesReceived: transfer.bytesReceived, bytesPerHost: transfer.bytesPerPeer,
  }
}

/**
 * The contents the route downloads: those of plan.fetch not staged yet (empty ones are made
 * here: they are in data.dsync only, in no torrent). Into an empty staging folder (a bootstrap)
 * that is plan.fetch itself, not a copy of a million entries.
 */
function toFetch(plan: Plan, staging: Staging): FetchList {
  const skip = new Uint8Array(plan.fetch.size)
  let skipped = 0
  let i = 0
  // Into an empty staging folder only the empty content needs its name (no hex string per file).
  const anyStaged = !staging.isEmpty
  for (const entry of plan.fetch.values()) {
    if (anyStaged || entry.size === 0) {
      const hex = entry.sha256!.toString('hex')
      if (staging.has(hex, entry.size)) skip[i] = 1
      else if (entry.size === 0) {
        staging.putEmpty(hex)
        skip[i] = 1
      }
    }
    skipped += skip[i++]
  }
  if (skipped === 0) return plan.fetch
  const items = new FetchList(plan.fetch.size - skipped)
  i = 0
  for (const entry of plan.fetch.values()) if (!skip[i++]) items.add(entry)
  return items
}

/** Bytes the local copies into staging will take (those not staged yet). */
function localBytes(plan: Plan, staging: Staging): number {
  // A map of every placed content only when DEST has some to copy (never in a bootstrap).
  if (plan.local.size === 0) return 0
  const placedSize = placedSizes(plan)
  let bytes = 0
  for (const [hex] of plan.local) {
    const size = placedSize.get(hex)
    if (size !== undefined && !staging.has(hex, size)) bytes += size
  }
  return bytes
}

/** Contents DEST holds under another path are copied into staging instead of fetched. */
function copyLocal(plan: Plan, staging: Staging): number {
  if (plan.local.size === 0) return 0
  let copied = 0
  const placedSize = placedSizes(plan)
  for (const [hex, from] of plan.local) {
    const size = placedSize.get(hex)
    if (size === undefined) continue
    if (!staging.has(hex, size) && !staging.copyIn(hex, from)) {
      throw new DsyncError(ExitCode.io, 'fs.failed', { action: 'read', path: from, reason: 'changed while being copied' })
    }
    copied++
  }
  return copied
}

/** Each placed content's size by its SHA-256 hex (only when DEST has contents to copy). */
function placedSizes(plan: Plan): Map<string, number> {
  const sizes = new Map<string, number>()
  for (const f of plan.place) sizes.set(f.sha256!.toString('hex'), f.size)
  return sizes
}
