import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { DSYNC_DIR, MANIFEST_NAME } from '../manifest/paths.js'
import { traceMark } from '../swarm/trace.js'
import { alreadyApplied } from './no-change.js'
import { resolveStage } from './resolve.js'
import type { PullContext, PullOptions, PullResult } from './types.js'

export type { PullContext, PullOptions, PullResult, Route } from './types.js'

// The client, as a loop over stages (docs/ARCHITECTURE.md has the map):
//   1 resolve (resolve.ts)  2 metadata (metadata.ts via full-route.ts, or delta-route.ts)  then
//   execute.ts runs 3 plan (plan.ts, deletes.ts)  4 stage/fetch (fetch-stage.ts)
//   5 apply (apply.ts, deletes.ts)  6 commit (commit.ts) under DEST's lock, the same for both routes.
// The routes are loaded only when there is something to do: a no-change check (no-change.ts)
// then costs the resolve stage alone, not the start-up of the whole client (docs/SCALE.md).

/**
 * Brings DEST to the generation SOURCE names, pulling from every host at once:
 * signed record (when the host has one) → the new data.dsync, rebuilt from DEST's through the
 * delta chain, or else from the torrent (verified by it) → plan against DEST → fetch only what
 * is missing into staging (verified piece by piece, then by SHA-256) → apply in a safe order
 * → DEST's data.dsync last, as the commit record.
 */
export async function pull(opts: PullOptions): Promise<PullResult> {
  traceMark('pull-start')
  // A bootstrap (no data.dsync in DEST) has no delta route: the full route's modules load, and
  // its .torrent downloads, while the hosts answer the resolve stage, not one after the other.
  const bootstrap = !existsSync(join(opts.dest, DSYNC_DIR, MANIFEST_NAME))
  const fullRoute = bootstrap ? import('./full-route.js') : undefined
  // Awaited only if the resolve stage succeeds: a failure of its own is reported there, not as an unhandled rejection.
  fullRoute?.catch(() => undefined)
  const ctx = await resolveStage(opts, bootstrap)
  traceMark('resolved')
  try {
    return await pullResolved(ctx, fullRoute)
  } finally {
    // The swarm the resolve stage opened ahead, if no route took it (the torrent failed, say).
    ctx.swarmAhead?.stop()
  }
}

async function pullResolved(ctx: PullContext, fullRoute: Promise<typeof import('./full-route.js')> | undefined): Promise<PullResult> {
  const first = ctx.resolved[0]
  if (ctx.record && first.baseUrl) {
    const done = alreadyApplied(ctx, ctx.record)
    if (done) return done
    const { pullViaDeltas } = await import('./delta-route.js')
    const viaDeltas = await pullViaDeltas(ctx, ctx.record, first.baseUrl)
    if (viaDeltas) return viaDeltas
  }
  const { pullFull } = await (fullRoute ?? import('./full-route.js'))
  return pullFull(ctx)
}
