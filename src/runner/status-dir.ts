import { mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { RepoConfig } from '../config/repo-config.js'
import { fsError } from '../errors.js'
import { writeFileAtomic } from '../util/atomic-write.js'

/** DSYNC's status values: 0 failed, 1 ok, 2 running. */
export type StatusValue = '0' | '1' | '2'

/**
 * Writes a repository's status where web pages read it: xync.conf's status=DIR gives
 * DIR/dsync-status/REPO (DSYNC's layout), the repo's own status= gives that file. Each is
 * replaced atomically, so a page never reads an empty file.
 */
export function writeRepoStatus(statusDir: string | undefined, repo: RepoConfig, value: StatusValue): void {
  const files = statusFiles(statusDir, repo)
  for (const file of files) {
    try {
      mkdirSync(dirname(file), { recursive: true })
      writeFileAtomic(file, value + '\n')
    } catch (err) {
      throw fsError(err, file, 'write')
    }
  }
}

export function statusFiles(statusDir: string | undefined, repo: RepoConfig): string[] {
  const out: string[] = []
  if (statusDir) out.push(join(statusDir, 'dsync-status', repo.name))
  if (repo.statusFile) out.push(repo.statusFile)
  return out
}
