import { loadHome, type Home } from '../config/load.js'
import type { RepoConfig } from '../config/repo-config.js'
import { DsyncError, ExitCode } from '../errors.js'
import type { ProgressState } from '../ui/progress.js'
import { runnerNow } from './clock.js'
import { registerRunner } from './emergency.js'
import { cleanLogs } from './logs.js'
import { runPool } from './pool.js'
import { busyWith, runRepoJob } from './repo-job.js'
import { upstreamKind } from './upstream.js'
import { formatHours, isDue } from './schedule.js'
import { stopRequested } from './stop.js'
import type { SyncReport } from './webhook.js'

export type RunEvent =
  | { type: 'skip'; repo: string; reason: 'notDue' | 'noUpstream' | 'locked'; detail: string }
  | { type: 'start'; repo: string; source: string }
  | { type: 'line'; repo: string; line: string }
  | { type: 'progress'; repo: string; state: ProgressState }
  | { type: 'done'; report: SyncReport }

export interface RunOptions {
  homeFlag?: string
  /** `-sync REPO` style: only these, due or not. */
  only?: string[]
  force?: boolean
  onEvent?: (e: RunEvent) => void
  retryDelayMs?: number
}

export interface RunSummary {
  reports: SyncReport[]
  skipped: number
  logsRemoved: number
}

/**
 * DSYNC's bare `dsync`: every repository with an upstream that is due now (timeset=) syncs,
 * syncps= at a time, each under its own lock so one repository never syncs twice at once.
 */
export async function runMirror(opts: RunOptions = {}): Promise<RunSummary> {
  const home = loadHome(opts.homeFlag)
  const now = runnerNow()
  const logsRemoved = cleanLogs(home.paths.home, now).length
  let skipped = 0
  const emit = (e: RunEvent) => {
    if (e.type === 'skip') skipped++
    opts.onEvent?.(e)
  }
  const due = chooseRepos(home, now, opts.only, emit)
  const unregister = registerRunner(home.paths.home)
  const reports: SyncReport[] = []
  let turn = 0
  const addresses = home.main.runner.ipadd
  try {
    await runPool(due, home.main.runner.syncps, async repo => {
      // Another process is syncing it: DSYNC skips it and touches nothing (status, log, webhook).
      const busy = busyWith(repo)
      if (busy !== undefined) return emit({ type: 'skip', repo: repo.name, reason: 'locked', detail: String(busy) })
      emit({ type: 'start', repo: repo.name, source: upstreamKind(repo, home.main.runner)?.source ?? '-' })
      const report = await runRepoJob(repo, {
        home, now, force: opts.force === true, retryDelayMs: opts.retryDelayMs,
        nextAddress: () => (addresses.length > 0 ? addresses[turn++ % addresses.length] : undefined),
        onLine: (r, line) => emit({ type: 'line', repo: r, line }),
        onProgress: (r, state) => emit({ type: 'progress', repo: r, state }),
      })
      reports.push(report)
      emit({ type: 'done', report })
    }, () => stopRequested() !== undefined)
  } finally {
    unregister()
  }
  return { reports, skipped, logsRemoved }
}

function chooseRepos(home: Home, now: Date, only: string[] | undefined, emit: (e: RunEvent) => void): RepoConfig[] {
  if (only && only.length > 0) {
    return only.map(name => {
      const repo = home.repos.find(r => r.name === name)
      if (!repo) throw new DsyncError(ExitCode.config, 'config.unknownRepo', { repo: name, dir: home.paths.reposDir, known: home.repos.map(r => r.name).join(', ') || '-' })
      return repo
    })
  }
  const out: RepoConfig[] = []
  for (const repo of home.repos) {
    if (!upstreamKind(repo, home.main.runner)) {
      emit({ type: 'skip', repo: repo.name, reason: 'noUpstream', detail: '' })
    } else if (!isDue(repo, now)) {
      emit({ type: 'skip', repo: repo.name, reason: 'notDue', detail: `${formatHours(repo.timeset!)} (${String(now.getHours()).padStart(2, '0')}h)` })
    } else {
      out.push(repo)
    }
  }
  if (home.repos.length === 0) throw new DsyncError(ExitCode.config, 'config.noRepos', { dir: home.paths.reposDir })
  return out
}
