import { RSYNC_MAX_DELETE } from '../config/defaults.js'
import type { MainRunnerConfig } from '../config/main-config.js'
import type { RepoConfig } from '../config/repo-config.js'
import { DsyncError, ExitCode } from '../errors.js'
import { EMOFF_MARKER } from './emergency.js'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { hostname } from 'node:os'
import { writeFileAtomic } from '../util/atomic-write.js'
import { ftpsyncFiles, ftpsyncSettings, ftpsyncSource, ftpsyncStages, tracePath, traceText } from './ftpsync.js'
import { dsyncVersion } from './version.js'
import { RSYNC_PARTIAL, RSYNC_VANISHED, runRsync, type RsyncRun, type Stage } from './rsync.js'
import { freshRsyncTempDir, removeRsyncTempDir } from './rsync-temp.js'

export const MAX_DELETE = RSYNC_MAX_DELETE

/** ftpsync's rsync options (protocol 31+): permissions, links, hard links, sparse files, stats. */
export const FTPSYNC_OPTIONS = '-prltvHSB8192 --safe-links --chmod=D755,F644 --timeout 120 --stats --no-human-readable --no-inc-recursive'

export interface FirstHopOptions {
  main: MainRunnerConfig
  force?: boolean
  /** The local address this run's rsync binds to (ipadd=). */
  localAddress?: string
  log: (line: string) => void
  onProgress?: (bytes: number, percent: number, stage: number) => void
}

export interface FirstHopResult {
  source: string
  bytesReceived: number
}

/**
 * The rsync URL a repository without a swarm source copies from: rsync-url= (ours), DSYNC's
 * intranet form (intra=true in xync.conf + intraadd=ADDR: rsync://ADDR/REPO/), or the
 * ftpsync.conf variables (RSYNC_HOST, RSYNC_PATH). Undefined: the repo has no rsync upstream.
 */
export function rsyncSourceOf(repo: RepoConfig, main: Pick<MainRunnerConfig, 'intra'>): string | undefined {
  if (repo.rsyncUrl) return repo.rsyncUrl
  if (main.intra && repo.intraAdd) return `rsync://${repo.intraAdd}/${repo.name}/`
  if (repo.ftpsync) return ftpsyncSource(ftpsyncSettings(repo, main, FTPSYNC_OPTIONS))
  return undefined
}

/** Folders and files of ours inside the tree: never copied from upstream, never deleted by it. */
export function keepOurs(extra: string[] = []): string[] {
  return ['/.dsync/', `/${EMOFF_MARKER}`, ...extra].flatMap(p => [`--filter=P ${p}`, `--exclude=${p}`])
}

/**
 * The first hop: everything but the index files first, then the index files with deletions
 * last and capped, so a mirror being updated always serves a consistent set (ftpsync's two
 * stages). ftpsync=true repos take ftpsync's own options and write its trace file.
 */
export async function rsyncFirstHop(repo: RepoConfig, opts: FirstHopOptions): Promise<FirstHopResult> {
  const source = rsyncSourceOf(repo, opts.main)
  if (!source) throw new DsyncError(ExitCode.config, 'sync.noSource', { file: repo.file, repo: repo.name })
  const temp = `--temp-dir=${freshRsyncTempDir(repo)}`
  try {
    const bind = opts.localAddress ? [`--address=${opts.localAddress}`] : []
    const extra = [temp, ...bind, ...(opts.main.passErrorTemp ? ['--exclude=.~tmp~/'] : []), ...repo.rsyncOptions]
    return repo.ftpsync ? await ftpsyncRun(repo, opts, extra) : await twoStages(repo, source, opts, extra)
  } finally {
    removeRsyncTempDir(repo)
  }
}

async function twoStages(repo: RepoConfig, source: string, opts: FirstHopOptions, extra: string[]): Promise<FirstHopResult> {
  const base = ['-rlptH', '--safe-links', '--timeout=120', '--stats', '--no-human-readable', '--info=progress2', ...keepOurs(), ...extra]
  const dest = repo.save.endsWith('/') ? repo.save : repo.save + '/'
  const indexExcludes = repo.indexFiles.map(p => `--exclude=${p}`)
  const capped = opts.force ? [] : [`--max-delete=${MAX_DELETE}`]
  const one = await runStage({ args: [...base, ...indexExcludes, source, dest] }, 1, repo, opts)
  const two = await runStage({ args: [...base, '--delay-updates', '--delete', '--delete-delay', ...capped, source, dest] }, 2, repo, opts)
  return { source, bytesReceived: one.bytesReceived + two.bytesReceived }
}

async function runStage(stage: Stage, n: number, repo: RepoConfig, opts: FirstHopOptions): Promise<RsyncRun> {
  opts.log(`rsync stage ${n}: rsync ${stage.args.join(' ')}`)
  const run = await runRsync(stage.args, {
    env: stage.env, onLine: opts.log, onProgress: (bytes, percent) => opts.onProgress?.(bytes, percent, n),
  })
  checkExit(run, n, repo, opts)
  return run
}

/** rsync's exit code as DSYNC reports it; network trouble is retried by the runner. */
function checkExit(run: RsyncRun, stage: number, repo: RepoConfig, opts: FirstHopOptions): void {
  if (run.code === 0) return
  if (run.code === RSYNC_VANISHED || (opts.main.passErrorTemp && run.code === RSYNC_PARTIAL)) {
    opts.log(`rsync stage ${stage}: exit code ${run.code} (${run.errorTail || 'some files vanished'}); accepted`)
    return
  }
  if (run.code === 25) throw new DsyncError(ExitCode.failed, 'runner.rsyncDeleteCap', { repo: repo.name, max: MAX_DELETE })
  const network = [5, 10, 12, 30, 35].includes(run.code)
  throw new DsyncError(network ? ExitCode.network : ExitCode.failed, 'runner.rsyncFailed', {
    repo: repo.name, stage, code: run.code, reason: run.errorTail || '-',
  })
}

/** ftpsync mode: its options and stages, its lock file in the tree while it runs, its trace file after. */
async function ftpsyncRun(repo: RepoConfig, opts: FirstHopOptions, extra: string[]): Promise<FirstHopResult> {
  const s = ftpsyncSettings(repo, opts.main, FTPSYNC_OPTIONS)
  const source = rsyncSourceOf(repo, opts.main)!
  const files = ftpsyncFiles(s)
  const stages = ftpsyncStages(s, source, repo.save, keepOurs([`/${files.lock}`, `/${files.trace}`]), extra, opts.force === true)
  const lock = join(repo.save, files.lock)
  const started = new Date()
  mkdirSync(repo.save, { recursive: true })
  writeFileSync(lock, `${hostname()} ${started.toISOString()}\n`)
  try {
    const t0 = Date.now()
    const one = await runStage(stages[0], 1, repo, opts)
    const t1 = Date.now()
    const two = await runStage(stages[1], 2, repo, opts)
    const bytes = one.bytesReceived + two.bytesReceived
    const trace = tracePath(repo.save, s)
    mkdirSync(dirname(trace), { recursive: true })
    const seconds: [number, number] = [Math.round((t1 - t0) / 1000), Math.round((Date.now() - t1) / 1000)]
    writeFileAtomic(trace, traceText(s, started, new Date(), bytes, seconds, dsyncVersion()))
    return { source, bytesReceived: bytes }
  } finally {
    rmSync(lock, { force: true })
  }
}
