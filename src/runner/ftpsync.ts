import { hostname } from 'node:os'
import { join, resolve } from 'node:path'
import type { MainRunnerConfig } from '../config/main-config.js'
import type { RepoConfig } from '../config/repo-config.js'
import { DsyncError, ExitCode } from '../errors.js'
import type { Stage } from './rsync.js'

/** ftpsync's defaults for its two rsync stages (ftpsync's RSYNC_OPTIONS1 and RSYNC_OPTIONS2). */
const OPTIONS1 = '--include=*.diff/ --include=by-hash/ --exclude=*.diff/Index --exclude=Contents* --exclude=Packages* ' +
  '--exclude=Sources* --exclude=Release* --exclude=InRelease --exclude=i18n/* --exclude=dep11/* --exclude=installer-*/current --exclude=ls-lR*'
const OPTIONS2 = '--max-delete=40000 --delay-updates --delete --delete-delay --delete-excluded'

/** The ftpsync.conf variables a repo config carries (ftpsync=true), with ftpsync's defaults. */
export interface FtpsyncSettings {
  host: string
  path: string
  user?: string
  password?: string
  port?: string
  mirrorName: string
  options: string[]
  options1: string[]
  options2: string[]
  /** EXCLUDE and RSYNC_EXTRA, and --bwlimit from RSYNC_BW. */
  extra: string[]
  info: Record<string, string>
}

export function ftpsyncSettings(repo: RepoConfig, main: Pick<MainRunnerConfig, 'intra'>, baseOptions: string): FtpsyncSettings {
  const v = repo.ftpsyncVars
  const intra = main.intra && repo.intraAdd
  let host = v.get('RSYNC_HOST') ?? ''
  if (!host && !repo.rsyncUrl && !intra) throw new DsyncError(ExitCode.config, 'runner.ftpsyncNoHost', { file: repo.file, repo: repo.name })
  const to = v.get('TO')
  if (to && resolve(to) !== resolve(repo.save)) {
    throw new DsyncError(ExitCode.config, 'runner.ftpsyncTo', { file: repo.file, to, save: repo.save })
  }
  let port = v.get('RSYNC_PORT')
  const hostPort = /^(.*):(\d+)$/.exec(host)
  if (hostPort && !host.includes(']') && host.split(':').length === 2) [host, port] = [hostPort[1], hostPort[2]]
  const words = (s: string | undefined) => (s ?? '').split(/\s+/).filter(w => w !== '')
  const bw = v.get('RSYNC_BW')
  return {
    host,
    path: v.get('RSYNC_PATH') ?? 'debian',
    user: v.get('RSYNC_USER') || undefined,
    password: v.get('RSYNC_PASSWORD') || undefined,
    port,
    mirrorName: v.get('MIRRORNAME') || hostname(),
    options: words(v.get('RSYNC_OPTIONS') ?? baseOptions),
    options1: words(v.get('RSYNC_OPTIONS1') ?? OPTIONS1),
    options2: words(v.get('RSYNC_OPTIONS2') ?? OPTIONS2),
    extra: [...words(v.get('EXCLUDE')), ...words(v.get('RSYNC_EXTRA')), ...(bw && bw !== '0' ? [`--bwlimit=${bw}`] : [])],
    info: Object.fromEntries([...v].filter(([k]) => k.startsWith('INFO_'))),
  }
}

export function ftpsyncSource(s: FtpsyncSettings): string {
  return `rsync://${s.user ? s.user + '@' : ''}${s.host}${s.port ? ':' + s.port : ''}/${s.path.replace(/^\/+|\/+$/g, '')}/`
}

/** `Archive-Update-in-Progress-MIRRORNAME` (ftpsync's lock, seen by downstreams) and the trace file. */
export function ftpsyncFiles(s: FtpsyncSettings): { lock: string; trace: string } {
  return { lock: `Archive-Update-in-Progress-${s.mirrorName}`, trace: `project/trace/${s.mirrorName}` }
}

/**
 * ftpsync's two rsync runs: stage 1 copies everything but the index files (RSYNC_OPTIONS1
 * excludes them) without deleting; stage 2 brings the index files, with updates delayed
 * to the end and deletions after the transfer, capped by --max-delete.
 */
export function ftpsyncStages(s: FtpsyncSettings, source: string, dest: string, ours: string[], extra: string[], force: boolean): Stage[] {
  const env = s.password ? { RSYNC_PASSWORD: s.password } : undefined
  const to = dest.endsWith('/') ? dest : dest + '/'
  const uncapped = force ? s.options2.filter(o => !o.startsWith('--max-delete')) : s.options2
  return [
    { args: [...s.options, ...ours, ...s.extra, ...extra, ...s.options1, source, to], env },
    { args: [...s.options, ...ours, ...s.extra, ...extra, ...uncapped, source, to], env },
  ]
}

/** The trace file ftpsync leaves in project/trace/MIRRORNAME, read by downstreams and mirror checkers. */
export function traceText(s: FtpsyncSettings, started: Date, finished: Date, bytes: number, stageSeconds: [number, number], version: string): string {
  const info = (k: string) => s.info[`INFO_${k}`] ?? 'Unknown'
  return [
    finished.toUTCString().replace('GMT', 'UTC'),
    `Date: ${finished.toUTCString()}`,
    `Date-Started: ${started.toUTCString()}`,
    `Used ftpsync version: dsync ${version}`,
    `Creator: dsync ${version} (ftpsync mode)`,
    `Running on host: ${hostname()}`,
    `Maintainer: ${info('MAINTAINER')}`,
    `Sponsor: ${info('SPONSOR')}`,
    `Country: ${info('COUNTRY')}`,
    `Location: ${info('LOCATION')}`,
    `Throughput: ${info('THROUGHPUT')}`,
    `Trigger: ${process.env.DSYNC_TRIGGER ?? 'cron'}`,
    `Upstream-mirror: ${s.host}`,
    `Total bytes received in rsync: ${bytes}`,
    `Total time spent in stage1 rsync: ${stageSeconds[0]}`,
    `Total time spent in stage2 rsync: ${stageSeconds[1]}`,
    `Total time spent in rsync: ${stageSeconds[0] + stageSeconds[1]}`,
    '',
  ].join('\n')
}

export function tracePath(dest: string, s: FtpsyncSettings): string {
  return join(dest, ftpsyncFiles(s).trace)
}
