import { join } from 'node:path'
import type { Home } from '../config/load.js'
import type { RepoConfig } from '../config/repo-config.js'
import { DsyncError, ExitCode } from '../errors.js'
import { t } from '../i18n/index.js'
import { DSYNC_DIR } from '../manifest/paths.js'
import type { ProgressState } from '../ui/progress.js'
import { formatBytes } from '../ui/units.js'
import { lockHolder } from '../util/lock.js'
import { clearMarker } from './emergency.js'
import { rsyncFirstHop } from './first-hop.js'
import { upstreamKind } from './upstream.js'
import { repoLogPath, RunLog } from './logs.js'
import { republish } from './publish.js'
import { writeRepoStatus } from './status-dir.js'
import { onStop, stopRequested } from './stop.js'
import { postWebhook, webhookBody, type SyncReport } from './webhook.js'

export interface JobContext {
  home: Home
  now: Date
  force: boolean
  /** The local address each connection or rsync run goes out from (ipadd=), taken in turn. */
  nextAddress: () => string | undefined
  onProgress?: (repo: string, state: ProgressState) => void
  onLine?: (repo: string, line: string) => void
  retryDelayMs?: number
}

/** The live process already syncing the repository (a second cron run, a `dsync -sync`), if any. */
export function busyWith(repo: RepoConfig): number | undefined {
  const pid = lockHolder(join(repo.save, DSYNC_DIR, 'lock'))
  return pid === process.pid ? undefined : pid
}

/**
 * One repository's run: its own log, the previous emergency stop's marker removed, status
 * 2 -> 1/0, the sync, regeneration when published, and the webhook. Never throws: the
 * result (and its error) is the report.
 */
export async function runRepoJob(repo: RepoConfig, ctx: JobContext): Promise<SyncReport> {
  const cfg = ctx.home.main.runner
  const log = new RunLog(repoLogPath(ctx.home.paths.home, cfg, repo.name, ctx.now), !cfg.logtime)
  const say = (line: string) => {
    log.line(line)
    ctx.onLine?.(repo.name, line)
  }
  const started = Date.now()
  const upstream = upstreamKind(repo, cfg)
  const report: SyncReport = { repo: repo.name, result: 'failed', duration: 0, bytes: 0, source: upstream?.source }
  const unregister = onStop(() => {
    report.result = 'stopped'
    log.line(t('runner.stoppedLog', { repo: repo.name, signal: stopRequested() ?? '-' }))
    writeRepoStatus(cfg.statusDir, repo, '0')
    log.close()
  })
  try {
    if (clearMarker(repo)) say(t('runner.markerRemoved', { repo: repo.name }))
    say(t('runner.starting', { repo: repo.name, source: upstream?.source ?? '-' }))
    if (!upstream) throw new DsyncError(ExitCode.config, 'runner.noUpstream', { file: repo.file, repo: repo.name })
    writeRepoStatus(cfg.statusDir, repo, '2')
    report.bytes = upstream.kind === 'dtp' ? await swarmSync(repo, ctx, say) : await rsyncSync(repo, ctx, say)
    if (repo.publish) await republish(ctx.home, repo, say)
    report.result = 'ok'
    writeRepoStatus(cfg.statusDir, repo, '1')
  } catch (err) {
    report.result = stopRequested() ? 'stopped' : 'failed'
    report.error = err instanceof Error ? err.message : String(err)
    try {
      writeRepoStatus(cfg.statusDir, repo, '0')
    } catch (e) {
      say((e as Error).message)
    }
  } finally {
    unregister()
  }
  report.duration = Math.round((Date.now() - started) / 100) / 10
  say(report.result === 'ok'
    ? t('runner.okLog', { repo: repo.name, bytes: formatBytes(report.bytes), seconds: report.duration })
    : report.result === 'stopped'
      ? t('runner.stoppedLog', { repo: repo.name, signal: stopRequested() ?? '-' })
      : t('runner.failedLog', { repo: repo.name, reason: report.error ?? '-', seconds: report.duration }))
  if (cfg.webhookUrl && report.result !== 'stopped') {
    const reason = await postWebhook(cfg.webhookUrl, webhookBody(report, summaryOf(report)))
    if (reason) say(t('runner.webhookFailed', { url: cfg.webhookUrl, reason }))
  }
  log.close()
  return report
}

export function summaryOf(r: SyncReport): string {
  return r.result === 'ok'
    ? t('runner.webhookOk', { repo: r.repo, bytes: formatBytes(r.bytes), seconds: r.duration })
    : t('runner.webhookFailedSync', { repo: r.repo, result: r.result, reason: r.error ?? '-', seconds: r.duration })
}

async function swarmSync(repo: RepoConfig, ctx: JobContext, say: (line: string) => void): Promise<number> {
  const { syncRepo } = await import('../sync/repo-sync.js')
  const addresses = ctx.home.main.runner.ipadd
  let lastPhase = ''
  const result = await syncRepo(repo, {
    force: ctx.force, localAddresses: addresses.length > 0 ? addresses : undefined, retryDelayMs: ctx.retryDelayMs,
    // xync.conf's dht=true and dht-bootstrap= serve the client too, as in dsync -sync.
    dht: ctx.home.main.dht, dhtBootstrap: ctx.home.main.dhtBootstrap,
    onWarning: say,
    onMotd: (peer, text) => say(`motd ${peer}: ${text.trimEnd()}`),
    onProgress: p => {
      if (p.phase !== lastPhase) say(`${p.phase}: ${p.filesTotal} files, ${formatBytes(p.bytesTotal)}`)
      lastPhase = p.phase
      ctx.onProgress?.(repo.name, { label: `${repo.name} ${p.phase}`, filesDone: p.filesDone, filesTotal: p.filesTotal, bytesDone: p.bytesDone, bytesTotal: p.bytesTotal, note: `${p.peers} peers` })
    },
  })
  say(result.upToDate && result.bytesReceived === 0
    ? `up to date (infohash ${result.infoHash})`
    : `+${result.added} ~${result.changed} -${result.removed}, ${formatBytes(result.bytesReceived)} from ${Object.keys(result.bytesPerHost).join(' ') || '-'}`)
  return result.bytesReceived
}

/** The rsync first hop under the same lock as a swarm sync, retried on network failures. */
async function rsyncSync(repo: RepoConfig, ctx: JobContext, say: (line: string) => void): Promise<number> {
  const { lockRepo, retryNetwork } = await import('../sync/repo-sync.js')
  const lock = lockRepo(repo)
  try {
    const r = await retryNetwork(repo, 1 + repo.retries, ctx.retryDelayMs, say, () => rsyncFirstHop(repo, {
      main: ctx.home.main.runner, force: ctx.force, localAddress: ctx.nextAddress(), log: say,
      onProgress: (bytes, percent, stage) => ctx.onProgress?.(repo.name, {
        label: `${repo.name} rsync ${stage}/2`, filesDone: 0, filesTotal: 0, bytesDone: bytes, bytesTotal: percent > 0 ? Math.round(bytes * 100 / percent) : 0,
      }),
    }), () => stopRequested() !== undefined)
    return r.bytesReceived
  } finally {
    lock.release()
  }
}
