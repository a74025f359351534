import { traceMark } from '../swarm/trace.js'
import { alreadyApplied } from './no-change.js'
import { resolveStage } from './resolve.js'
import type { PullOptions, PullResult } from './types.js'

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
  const ctx = await resolveStage(opts)
  traceMark('resolved')
  const first = ctx.resolved[0]
  if (ctx.record && first.baseUrl) {
    const done = alreadyApplied(ctx, ctx.record)
    if (done) return done
    const { pullViaDeltas } = await import('./delta-route.js')
    const viaDeltas = await pullViaDeltas(ctx, ctx.record, first.baseUrl)
    if (viaDeltas) return viaDeltas
  }
  const { pullFull } = await import('./full-route.js')
  return pullFull(ctx)
}
