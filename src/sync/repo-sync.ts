import { mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { RETRY_FIRST_DELAY_MS } from '../config/defaults.js'
import type { RepoConfig } from '../config/repo-config.js'
import { DsyncError, ExitCode, fsError } from '../errors.js'
import { t } from '../i18n/index.js'
import { DSYNC_DIR } from '../manifest/paths.js'
import { writeFileAtomic } from '../util/atomic-write.js'
import { acquireLock, type Lock } from '../util/lock.js'
import { pull, type PullOptions, type PullResult } from './pull.js'

/** DSYNC's status file values. */
export const Status = { failed: '0', ok: '1', running: '2' } as const

export interface RepoSyncOptions extends Omit<PullOptions, 'sources' | 'dest' | 'indexFiles' | 'deleteLimit'> {
  /** Overrides the repo's retries=. */
  retries?: number
  /** First retry delay; doubles each time. */
  retryDelayMs?: number
}

/**
 * `dsync sync REPO`: pull the repo from its dsync-url= sources into save=, under the repo's
 * lock, with DSYNC's status file kept up to date and retries for network failures (a bad
 * torrent, a hostile manifest or the delete guard are not retried: they would fail again).
 */
export async function syncRepo(repo: RepoConfig, opts: RepoSyncOptions): Promise<PullResult> {
  if (repo.sources.length === 0) throw new DsyncError(ExitCode.config, 'sync.noSource', { file: repo.file, repo: repo.name })
  const lock = lockRepo(repo)
  try {
    writeStatus(repo, Status.running)
    const result = await retryNetwork(repo, 1 + (opts.retries ?? repo.retries), opts.retryDelayMs, opts.onWarning, () => pull({
      ...opts, sources: repo.sources, dest: repo.save, indexFiles: repo.indexFiles, deleteLimit: repo.deleteLimit, lockHeld: true,
      connections: opts.connections ?? repo.connections, key: opts.key ?? repo.key,
    }))
    writeStatus(repo, Status.ok)
    return result
  } catch (err) {
    writeStatus(repo, Status.failed)
    throw err
  } finally {
    lock.release()
  }
}

/** The repository's lock (SAVE/.dsync/lock), shared by every kind of sync so two never overlap. */
export function lockRepo(repo: Pick<RepoConfig, 'save'>): Lock {
  const dsyncDir = join(repo.save, DSYNC_DIR)
  try {
    mkdirSync(dsyncDir, { recursive: true })
  } catch (err) {
    throw fsError(err, dsyncDir, 'write')
  }
  return acquireLock(join(dsyncDir, 'lock'))
}

/**
 * Runs `work` up to `attempts` times while it fails with a network error, waiting twice as
 * long each time; other failures (bad data, the delete guard, a stop) are not retried.
 */
export async function retryNetwork<T>(repo: Pick<RepoConfig, 'name'>, attempts: number, firstDelayMs: number | undefined,
  onWarning: ((m: string) => void) | undefined, work: () => Promise<T>, giveUp: () => boolean = () => false): Promise<T> {
  let delay = firstDelayMs ?? RETRY_FIRST_DELAY_MS
  for (let attempt = 1; ; attempt++) {
    try {
      return await work()
    } catch (err) {
      const retryable = err instanceof DsyncError && err.exitCode === ExitCode.network && !giveUp()
      if (!retryable || attempt >= attempts) throw err
      onWarning?.(t('sync.retry', { repo: repo.name, attempt, attempts, reason: (err as Error).message, seconds: (delay / 1000).toFixed(0) }))
      await new Promise(r => setTimeout(r, delay))
      delay *= 2
    }
  }
}

/** Writes the repository's own status file (status=), if it has one. */
export function writeStatus(repo: Pick<RepoConfig, 'statusFile'>, value: string): void {
  if (!repo.statusFile) return
  try {
    mkdirSync(dirname(repo.statusFile), { recursive: true })
  } catch (err) {
    throw fsError(err, repo.statusFile, 'write')
  }
  writeFileAtomic(repo.statusFile, value + '\n')
}
