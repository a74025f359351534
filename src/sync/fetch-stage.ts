import { DsyncError, ExitCode } from '../errors.js'
import type { ManifestEntry } from '../manifest/entry.js'
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
export async function fetchStage(dest: string, plan: Plan, route: Route): Promise<Staged> {
  const staging = new Staging(dest)
  const items: [string, ManifestEntry][] = []
  for (const [hex, entry] of plan.fetch) {
    if (staging.has(hex, entry.size)) continue
    // Empty files are in data.dsync only, not in any torrent: nothing to fetch.
    if (entry.size === 0) {
      staging.putEmpty(hex)
      continue
    }
    items.push([hex, entry])
  }
  const filesCopiedLocally = copyLocal(plan, staging)
  const transfer = await route.fetch(items, staging)
  // Power loss, not only SIGKILL: staged data reaches the disk before the commit record.
  await staging.syncAll(plan.place.map(f => f.sha256!.toString('hex')))
  return {
    staging, filesFetched: items.length, filesCopiedLocally,
    bytesReceived: transfer.bytesReceived, bytesPerHost: transfer.bytesPerPeer,
  }
}

/** Contents DEST holds under another path are copied into staging instead of fetched. */
function copyLocal(plan: Plan, staging: Staging): number {
  let copied = 0
  const placedSize = new Map(plan.place.map(f => [f.sha256!.toString('hex'), f.size]))
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
