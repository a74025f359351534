import type { Command } from 'commander'
import { ExitCode } from '../../src/errors.js'
import { t } from '../../src/i18n/index.js'
import type { RunEvent } from '../../src/runner/runner.js'
import { ProgressBar } from '../../src/ui/progress.js'
import { formatBytes } from '../../src/ui/units.js'
import { cliEntry, globals, openHome, printJson, warn } from '../context.js'

const RUN_KEYS = `
xync.conf: syncps=N (1-100, default 1), ipadd=ADDR,ADDR (local addresses to download from),
  logdir=true (logs/REPO/), logtime=true (logs-YYYYMMDD-HHMM.log; logs older than 7 days are removed),
  webhookurl=URL (Slack/Discord JSON), status=DIR (DIR/dsync-status/REPO: 0 failed, 1 ok, 2 running),
  intra=true (with a repo's intraadd=ADDR: rsync://ADDR/REPO).
repos/NAME.conf: timeset=00,06,12,18 (hours at which it is due), dsync-url= (swarm), or
  rsync-url=rsync://HOST/MODULE, or ftpsync=true with ftpsync.conf's variables (RSYNC_HOST, RSYNC_PATH,
  MIRRORNAME, ...); rsync-options=; dsync=true also regenerates and reloads it after a successful sync.
Logs: ~/dxync/logs/. DSYNC_NOW=2025-05-14T06:00 runs as if at that time.`

/** DSYNC's downstream runner: bare `dsync` / `dsync run`, -nolog, -emoff, -test, -cleanlog. */
export function registerRun(program: Command): void {
  program
    .command('run')
    .description('sync every due repository (timeset=), syncps= at a time, in the foreground (DSYNC: bare "dsync"; -nolog: background)')
    .argument('[repo...]', 'only these repositories, due or not (default: every repo with an upstream that is due)')
    .option('--nolog', 'run detached in the background and return at once (DSYNC: dsync -nolog)')
    .option('--force', 'lift the delete guard and the rsync delete cap (DSYNC: dsync -force)')
    .option('--verbose', "print each repository's log lines too")
    .addHelpText('after', RUN_KEYS)
    .action(async (names: string[], opts: { nolog?: boolean; force?: boolean; verbose?: boolean }, cmd: Command) => {
      const g = globals(cmd)
      if (opts.nolog) {
        openHome(g) // a broken config fails here, in the terminal, not in a log nobody reads
        const { startDetached } = await import('../../src/runner/detach.js')
        const r = startDetached(g.home, [...(opts.force ? ['--force'] : []), ...names], cliEntry())
        if (g.json) printJson({ event: 'detached', ...r })
        else console.log(t('runner.detached', r))
        return
      }
      const { installStopHandler } = await import('../../src/runner/stop.js')
      const { runMirror } = await import('../../src/runner/runner.js')
      installStopHandler(ExitCode.failed)
      openHome(g)
      const bar = new ProgressBar(process.stderr, !g.json && process.stderr.isTTY === true)
      const summary = await runMirror({ homeFlag: g.home, only: names, force: opts.force, onEvent: e => show(e, g.json, bar, opts.verbose === true) })
      bar.done()
      const failed = summary.reports.filter(r => r.result !== 'ok').length
      if (g.json) printJson({ event: 'summary', ok: summary.reports.length - failed, failed, skipped: summary.skipped })
      else if (summary.reports.length === 0) console.log(t('runner.nothingDue'))
      else console.log(t('runner.summary', { ok: summary.reports.length - failed, failed, skipped: summary.skipped }))
      if (failed > 0) process.exitCode = ExitCode.failed
    })
  registerRunnerTools(program)
}

/** emoff, test and cleanlog: DSYNC's maintenance verbs around the runner. */
function registerRunnerTools(program: Command): void {
  program
    .command('emoff')
    .description('emergency stop of every running sync of this home; marks each stopped repository (DSYNC: -emoff)')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = globals(cmd)
      const home = openHome(g)
      const { emergencyStop, markerPath } = await import('../../src/runner/emergency.js')
      const stopped = await emergencyStop(home)
      if (g.json) return stopped.forEach(s => printJson({ event: 'stopped', ...s }))
      if (stopped.length === 0) console.log(t('runner.emoffNone'))
      for (const s of stopped) {
        const repo = s.repo && home.repos.find(r => r.name === s.repo)
        console.log(repo ? t('runner.emoffRepo', { repo: repo.name, how: s.how, pid: s.pid, marker: markerPath(repo) }) : t('runner.emoffRunner', { pid: s.pid, how: s.how }))
      }
    })

  program
    .command('test')
    .description('check every repo config, folder permissions and upstream reachability; exit 1 on any failure (DSYNC: -test)')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = globals(cmd)
      const { selfTest, rowOk } = await import('../../src/runner/selftest.js')
      const rows = await selfTest(g.home)
      if (g.json) rows.forEach(r => printJson({ event: 'test', ok: rowOk(r), ...r }))
      else printTable(rows)
      const bad = rows.filter(r => !rowOk(r)).length
      if (!g.json) console.log(bad > 0 ? t('runner.testFailed', { count: bad }) : t('runner.testOk'))
      if (bad > 0) process.exitCode = ExitCode.failed
    })

  program
    .command('cleanlog')
    .description('remove logs older than 7 days now (every run also does it) (DSYNC: -cleanlog)')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = globals(cmd)
      const home = openHome(g)
      const { cleanLogs, logsDir, LOG_KEEP_DAYS } = await import('../../src/runner/logs.js')
      const { runnerNow } = await import('../../src/runner/clock.js')
      const removed = cleanLogs(home.paths.home, runnerNow())
      if (g.json) printJson({ event: 'cleanlog', removed })
      else console.log(t('runner.cleaned', { count: removed.length, days: LOG_KEEP_DAYS, dir: logsDir(home.paths.home) }))
    })
}

function show(e: RunEvent, json: boolean, bar: ProgressBar, verbose: boolean): void {
  if (json) {
    if (e.type !== 'line' || verbose) printJson({ event: e.type, ...e, type: undefined })
    return
  }
  switch (e.type) {
    case 'progress': return bar.update(e.state)
    case 'line': if (verbose) { bar.done(); warn(`${e.repo}: ${e.line}`) } return
    case 'skip': bar.done(); return console.log(t(e.reason === 'notDue' ? 'runner.skipNotDue' : e.reason === 'locked' ? 'runner.skipLocked' : 'runner.skipNoUpstream', { repo: e.repo, detail: e.detail }))
    case 'start': bar.done(); return console.log(t('runner.starting', { repo: e.repo, source: e.source }))
    case 'done':
      bar.done()
      return console.log(e.report.result === 'ok'
        ? t('runner.okLog', { repo: e.report.repo, bytes: formatBytes(e.report.bytes), seconds: e.report.duration })
        : t('runner.failedLog', { repo: e.report.repo, reason: e.report.error ?? e.report.result, seconds: e.report.duration }))
  }
}

type Row = Awaited<ReturnType<typeof import('../../src/runner/selftest.js').selfTest>>[number]

function printTable(rows: Row[]): void {
  const cell = (c?: { ok: boolean }) => (c === undefined ? '-' : c.ok ? 'ok' : 'FAIL')
  const table = [['REPO', 'CONFIG', 'FOLDERS', 'UPSTREAM'], ...rows.map(r => [r.name, cell(r.config), cell(r.folders), cell(r.upstream)])]
  const widths = table[0].map((_, i) => Math.max(...table.map(row => row[i].length)))
  for (const row of table) console.log(row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd())
  for (const r of rows) {
    for (const c of [r.config, r.folders, r.upstream]) if (c && !c.ok) console.log(`  ${r.name}: ${c.detail}`)
  }
}
