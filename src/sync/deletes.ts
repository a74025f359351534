import { join } from 'node:path'
import { rmdirSync, unlinkSync } from 'node:fs'
import { SETTINGS } from '../config/defaults.js'
import { DsyncError, ExitCode } from '../errors.js'
import type { ScannedEntry } from '../manifest/scan.js'
import type { ApplyContext } from './apply.js'
import type { Plan } from './plan.js'
import { depth, parentOf } from './tree-paths.js'
import type { PullOptions } from './types.js'

// Deletions are a stage of their own: planned after every upstream entry is placed in the
// plan, guarded against mass loss, applied after every new file is in.

/** Mass deletions of a handful of entries are ordinary churn; the guard is for real losses. */
const GUARD_MIN_ENTRIES = 10

/**
 * Local entries upstream does not have become deletes, deepest first. A conflicting local
 * folder is moved aside whole, children included: what is under it is lost like a deletion,
 * so it counts for the delete guard and in `diff` (displaced).
 */
export function planDeletes(plan: Plan, local: Map<string, ScannedEntry>, wanted: Set<string>): void {
  const conflicted = new Set(plan.conflicts.map(c => c.path))
  const underConflict = (path: string) => {
    for (let p = path; p !== ''; p = parentOf(p)) if (conflicted.has(p)) return true
    return false
  }
  for (const [path, l] of local) {
    if (underConflict(path)) {
      if (!conflicted.has(path)) plan.displaced.push(l)
    } else if (!wanted.has(path)) plan.deletes.push(l)
  }
  // Children before parents, so each folder is empty when its turn comes.
  plan.deletes.sort((a, b) => depth(b.path) - depth(a.path) || (a.path < b.path ? 1 : -1))
}

/** Refuses a sync that would delete more than the delete limit's share of DEST (unless forced). */
export function guardDeletes(plan: Plan, opts: PullOptions): void {
  const limit = opts.deleteLimit ?? SETTINGS.deleteLimit.default
  const count = plan.deletes.length + plan.displaced.length
  if (opts.force || count <= GUARD_MIN_ENTRIES || plan.localEntries === 0) return
  const percent = (count / plan.localEntries) * 100
  if (percent > limit) {
    throw new DsyncError(ExitCode.failed, 'sync.massDelete', { dest: opts.dest, count, total: plan.localEntries, percent: percent.toFixed(0), limit })
  }
}

/** The apply's deletions, after every new name is in (children first: plan order). */
export function applyDeletes(ctx: ApplyContext): void {
  let deleted = 0
  for (const d of ctx.plan.deletes) {
    ctx.writable(d.path)
    ctx.guard(() => (d.type === 'd' ? rmdirSync(join(ctx.dest, d.path)) : unlinkSync(join(ctx.dest, d.path))), join(ctx.dest, d.path))
    ctx.onStep?.('deletes', ++deleted)
  }
  ctx.onStep?.('deletes')
}
