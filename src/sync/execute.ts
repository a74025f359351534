import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { fsError } from '../errors.js'
import { generationFiles } from '../generation/files.js'
import { DSYNC_DIR } from '../manifest/paths.js'
import { acquireLock } from '../util/lock.js'
import { traceMark } from '../swarm/trace.js'
import { collectNow } from '../util/release-memory.js'
import { applyPlan } from './apply.js'
import { commitStage } from './commit.js'
import { guardDeletes } from './deletes.js'
import { fetchStage } from './fetch-stage.js'
import { aheadFilter, prepareFolders, recoverAhead } from './new-folders.js'
import { readOrUndefined } from './metadata.js'
import { describePlan, isEmpty, makePlan, type Plan } from './plan.js'
import { releaseStageBuffers } from './stage-writer.js'
import type { PullContext, PullResult, Route } from './types.js'

/**
 * From this many files to place, a full collection before the apply: what the transfer dropped
 * (its downloaders, piece buffers and queues) goes before the apply's own garbage comes.
 */
const COLLECT_BEFORE_APPLY = 100_000

/** DEST's lock (DEST/.dsync/lock), making DEST/.dsync/ first: held from the first write to DEST to the run's end. */
export function lockDest(dest: string): { release(): void } {
  try {
    mkdirSync(join(dest, DSYNC_DIR), { recursive: true })
  } catch (err) {
    throw fsError(err, dest, 'write')
  }
  return acquireLock(join(dest, DSYNC_DIR, 'lock'))
}

/** Stages 3-6 under DEST's lock, the same for both routes: plan → guard → stage/fetch → apply → commit. */
export async function executePlan(ctx: PullContext, r: Route): Promise<PullResult> {
  const { opts } = ctx
  // Two runs on one DEST would share staging and interleave their applies. A caller that
  // holds the lock has DEST/.dsync/ already (the lock file is in it).
  const releaseLock = opts.lockHeld ? undefined : lockDest(opts.dest).release
  try {
    // What the route can put on disk now leaves memory before the plan is built (at 1M files the
    // plan on top of data.dsync's bytes and the shard torrents was the run's peak).
    if (!opts.dryRun) r.beforePlan?.()
    // A turn of the event loop between the long synchronous stages: a bootstrap's early fetch
    // (early-fetch.ts) reads its blocks and tops up its requests meanwhile.
    await nextTurn()
    traceMark('plan-start')
    if (r.manifest) opts.onList?.(r.manifest)
    const plan = await planStage(ctx, r)
    traceMark('plan-done')
    await nextTurn()
    // The lists were for the plan: what the run still needs of them, the plan holds (at 1M
    // files the list's array alone is 8 MB beside the plan's through the transfer).
    r.manifest = undefined
    r.previous = undefined
    const result = newResult(ctx, r, plan)
    if (opts.dryRun) {
      result.plan = describePlan(plan)
      return finish(ctx, result)
    }
    if (result.upToDate && r.sameGeneration && sameRecord(ctx)) return finish(ctx, result)
    // The new folders are made inside staging while the transfer runs, and fetched files are
    // placed ahead in them (moved in at the apply): new-folders.ts.
    const stagingDir = join(opts.dest, DSYNC_DIR, 'staging')
    recoverAhead(stagingDir)
    const folders = prepareFolders(stagingDir, plan.mkdirs)
    const staged = await fetchStage(opts.dest, plan, r, aheadFilter(plan.mkdirs, opts.indexFiles))
    // Every content DEST holds, by SHA-256: needed for local copies only, and at 200,000 files
    // tens of MB that apply and commit (a torrent rebuild) would otherwise carry.
    traceMark('fetched-and-synced')
    plan.local.clear()
    // The transfer's buffers and threads leave before the apply, which keeps the event loop
    // from here to its end (at 1M files it was the bootstrap's peak with them still held).
    await releaseStageBuffers()
    if (plan.place.length >= COLLECT_BEFORE_APPLY) collectNow()
    traceMark('released')
    result.filesFetched = staged.filesFetched
    result.filesCopiedLocally = staged.filesCopiedLocally
    result.bytesReceived = staged.bytesReceived
    result.bytesPerHost = staged.bytesPerHost
    applyPlan({ dest: opts.dest, plan, staging: staged.staging, indexFiles: opts.indexFiles, onStep: opts.onApplyStep, folders: await folders })
    traceMark('applied')
    await commitStage(ctx, r, staged.staging)
    traceMark('committed')
    return finish(ctx, result)
  } catch (err) {
    // A failed run leaves no parked data.dsync behind (a refused pull leaves DEST as it was).
    if (r.manifestFile) rmSync(r.manifestFile, { force: true })
    r.abandon?.()
    throw err
  } finally {
    releaseLock?.()
  }
}

/** Stage 3, plan: DEST against the new data.dsync; --no-delete and the delete guard applied. */
async function planStage(ctx: PullContext, r: Route): Promise<Plan> {
  const { opts } = ctx
  const plan = r.plan ? await r.plan() : await walkPlan(ctx, r)
  if (opts.noDelete) plan.deletes = []
  // diff reports what a pull would do, the guard's refusal included; it does not refuse.
  if (!opts.dryRun) guardDeletes(plan, opts)
  return plan
}

/** The plan of every entry of DEST against the whole new list. */
export async function walkPlan(ctx: PullContext, r: { manifest?: Route['manifest']; previous?: Route['previous'] }): Promise<Plan> {
  if (!r.manifest) throw new Error('walkPlan: the route gave no list')
  ctx.planned = 'walk'
  return makePlan({ dest: ctx.opts.dest, upstream: r.manifest, previous: r.previous, onWarning: ctx.opts.onWarning, listAdded: ctx.opts.dryRun === true })
}

function newResult(ctx: PullContext, r: Route, plan: Plan): PullResult {
  const { opts, record } = ctx
  return {
    dest: opts.dest, repo: r.repo, infoHash: r.infoHash, upToDate: isEmpty(plan), dryRun: opts.dryRun === true,
    added: plan.addedCount, changed: plan.changed.length, removed: plan.deletes.length + plan.displaced.length,
    filesFetched: 0, filesCopiedLocally: 0, bytesToFetch: plan.fetchBytes, bytesReceived: 0, bytesPerHost: {}, seconds: 0,
    route: r.route, deltas: r.deltas, seq: record?.seq, verified: record !== undefined && (opts.key ?? ctx.resolved[0].key) !== undefined, metadataBytes: 0,
  }
}

/** DEST already holds the signed record of this generation (or there is none to hold). */
function sameRecord({ opts, record }: PullContext): boolean {
  return !record || record.bytes.equals(readOrUndefined(generationFiles(opts.dest).record) ?? Buffer.alloc(0))
}

function finish(ctx: PullContext, r: PullResult): PullResult {
  r.seconds = (Date.now() - ctx.started) / 1000
  r.metadataBytes = ctx.resolved.reduce((sum, s) => sum + s.httpBytes, 0) + (ctx.extraHttpBytes ?? 0)
  if (ctx.torrents) r.torrents = ctx.torrents
  if (ctx.planned) r.planned = ctx.planned
  return r
}
