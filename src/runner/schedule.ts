import type { RepoConfig } from '../config/repo-config.js'

/**
 * DSYNC's timeset=: a repository is due when the run starts within one of its hours (local
 * time, as cron reads it). Without timeset= it is due on every run.
 */
export function isDue(repo: Pick<RepoConfig, 'timeset'>, now: Date): boolean {
  return repo.timeset === undefined || repo.timeset.includes(now.getHours())
}

export function formatHours(hours: number[]): string {
  return hours.map(h => String(h).padStart(2, '0')).join(',')
}
