import { renameSync } from 'node:fs'
import { fsError } from '../errors.js'
import { generationFiles } from '../generation/files.js'
import { repoFiles } from '../manifest/paths.js'
import { writeFileAtomic } from '../util/atomic-write.js'
import type { Staging } from './staging.js'
import type { PullContext, Route } from './types.js'

/**
 * Stage 6, commit: after the apply, the signed record, then DEST's data.dsync — the commit
 * record: until this rename a re-run sees the old generation and resumes — then the route's
 * own files (torrent, magnet link); staging is emptied last.
 */
export async function commitStage(ctx: PullContext, route: Route, staging: Staging): Promise<void> {
  const { opts, record } = ctx
  await route.beforeCommit?.()
  if (record) writeFileAtomic(generationFiles(opts.dest).record, record.bytes)
  const manifest = repoFiles(opts.dest, route.repo).manifest
  if (route.manifestBytes) writeFileAtomic(manifest, route.manifestBytes)
  else commitParked(route.manifestFile!, manifest)
  opts.onApplyStep?.('commit')
  await route.commit()
  staging.prune(new Set())
}

/** A data.dsync the route parked (written and fsync'ed already) takes its place by one rename. */
function commitParked(parked: string, manifest: string): void {
  try {
    renameSync(parked, manifest)
  } catch (err) {
    throw fsError(err, manifest, 'write')
  }
}
