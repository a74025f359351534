import { closeSync, mkdirSync, openSync, readdirSync, renameSync, rmdirSync, statSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import type { MainRunnerConfig } from '../config/main-config.js'
import { LOG_KEEP_DAYS } from '../config/defaults.js'
import { fsError } from '../errors.js'
import { logTime, stamp } from './clock.js'

export { LOG_KEEP_DAYS }

export function logsDir(home: string): string {
  return join(home, 'logs')
}

/**
 * Where one run of REPO logs, after DSYNC's layout:
 *   default        logs/REPO.log                 (the previous run's is kept as REPO.log.STAMP)
 *   logdir=true    logs/REPO/REPO.log
 *   logtime=true   logs/REPO-logs-20250514-0603.log, or logs/REPO/logs-20250514-0603.log with logdir
 */
export function repoLogPath(home: string, cfg: Pick<MainRunnerConfig, 'logdir' | 'logtime'>, repo: string, now: Date): string {
  const dir = cfg.logdir ? join(logsDir(home), repo) : logsDir(home)
  const prefix = cfg.logdir ? '' : `${repo}-`
  return join(dir, cfg.logtime ? `${prefix}logs-${stamp(now)}.log` : `${repo}.log`)
}

/** One run's log file: timestamped lines, written straight through (a killed run keeps its log). */
export class RunLog {
  private fd: number | undefined

  constructor(readonly path: string, fixedName: boolean) {
    try {
      mkdirSync(join(path, '..'), { recursive: true })
      // A fixed name is one log per run too: the previous run's file moves aside, named by
      // its own time, and ages out with the rest.
      if (fixedName) rotate(path)
      this.fd = openSync(path, 'a', 0o644)
    } catch (err) {
      throw fsError(err, path, 'write')
    }
  }

  line(text: string): void {
    if (this.fd === undefined) return
    for (const l of text.split('\n')) {
      if (l !== '') writeSync(this.fd, `${logTime()} ${l}\n`)
    }
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd)
    this.fd = undefined
  }
}

/** Moves last run's log aside as PATH.STAMP (its own time), so each run starts a file of its own. */
export function rotate(path: string): void {
  let mtime: Date
  try {
    mtime = statSync(path).mtime
  } catch {
    return // first run
  }
  let target = `${path}.${stamp(mtime)}`
  for (let i = 1; exists(target); i++) target = `${path}.${stamp(mtime)}.${i}`
  renameSync(path, target)
}

function exists(path: string): boolean {
  try {
    statSync(path)
    return true
  } catch {
    return false
  }
}

/**
 * Removes log files (and then-empty per-repo folders) last written more than `days` before
 * `now`. Only names a run writes are touched: `*.log` and rotated `*.log.STAMP`.
 */
export function cleanLogs(home: string, now: Date, days = LOG_KEEP_DAYS): string[] {
  const removed: string[] = []
  const limit = now.getTime() - days * 86_400_000
  const walk = (dir: string, depth: number): void => {
    let names: string[]
    try {
      names = readdirSync(dir)
    } catch {
      return
    }
    for (const name of names) {
      const path = join(dir, name)
      let st
      try {
        st = statSync(path)
      } catch {
        continue
      }
      if (st.isDirectory() && depth === 0) {
        walk(path, 1)
        try {
          if (readdirSync(path).length === 0) rmdirSync(path)
        } catch {
          // in use or not ours
        }
      } else if (st.isFile() && /\.log(\.[0-9-]+(\.\d+)?)?$/.test(name) && st.mtimeMs < limit) {
        unlinkSync(path)
        removed.push(path)
      }
    }
  }
  walk(logsDir(home), 0)
  return removed
}
