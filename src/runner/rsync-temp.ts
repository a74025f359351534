import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { RepoConfig } from '../config/repo-config.js'
import { DSYNC_DIR } from '../manifest/paths.js'

/**
 * Where the first hop's rsync writes the files it is receiving (`--temp-dir`): SAVE/.dsync/,
 * which the stages never copy or delete (keepOurs), gendsync never walks, and hosts never serve.
 * Without it rsync writes `.NAME.XXXXXX` beside each file, and whether such a file is gone after
 * a stop depends on rsync's own signal handling reaching its receiver process: a SIGKILLed run
 * (the emergency stop's last resort, the OOM killer, a power cut) leaves it in the served tree,
 * and one CI run saw it left after a plain SIGTERM too. Here a leftover is ours to remove: each
 * first hop starts from an empty folder and removes it when it ends, however it ends.
 * Same filesystem as the tree, so rsync still renames into place; a tree split over several
 * filesystems makes rsync copy across instead (slower, still correct).
 */
export function rsyncTempDir(repo: Pick<RepoConfig, 'save'>): string {
  return join(repo.save, DSYNC_DIR, 'rsync-tmp')
}

/** Empties (a killed run's leftovers) and creates the temporary folder; returns its path. */
export function freshRsyncTempDir(repo: Pick<RepoConfig, 'save'>): string {
  const dir = rsyncTempDir(repo)
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  return dir
}

export function removeRsyncTempDir(repo: Pick<RepoConfig, 'save'>): void {
  rmSync(rsyncTempDir(repo), { recursive: true, force: true })
}
