import type { Command } from 'commander'
import { SETTINGS } from '../../src/config/defaults.js'
import { findRepo } from '../../src/config/load.js'
import type { RepoConfig } from '../../src/config/repo-config.js'
import { DsyncError, ExitCode } from '../../src/errors.js'
import { t } from '../../src/i18n/index.js'
import { ProgressBar } from '../../src/ui/progress.js'
import { globals, intFlag, openHome, warn } from '../context.js'
import { peersOf, progressPrinter, report, transferOptions, type TransferFlags } from './pull.js'

export function registerSync(program: Command): void {
  transferOptions(program
    .command('sync')
    .description('sync configured repositories from their dsync-url= (DSYNC: -sync REPO); status file, lock, retries')
    .argument('[repo...]', 'repositories to sync (default: every repo with dsync-url=)'))
    .option('--retries <n>', `attempts after a network failure (default: the repo's retries=, else ${SETTINGS.retries.default})`, intFlag('--retries', SETTINGS.retries))
    .action(async (names: string[], opts: TransferFlags & { retries?: number }, cmd: Command) => {
      const g = globals(cmd)
      const home = openHome(g)
      const named: RepoConfig[] = names.map(n => findRepo(home, n))
      // A repository without a swarm source syncs by rsync (its first hop): the runner does that.
      const byRsync = named.filter(r => r.sources.length === 0 && (r.rsyncUrl || r.ftpsync || r.intraAdd))
      if (byRsync.length > 0) await runRsyncRepos(cmd, byRsync.map(r => r.name), opts.force)
      if (byRsync.length > 0 && byRsync.length === named.length) return
      const repos = names.length > 0 ? named.filter(r => !byRsync.includes(r)) : home.repos.filter(r => r.sources.length > 0)
      if (repos.length === 0) throw new DsyncError(ExitCode.config, 'config.noRepos', { dir: home.paths.reposDir })
      await syncSwarmRepos(repos, opts, g, home)
    })
}

type Home = ReturnType<typeof openHome>

/** Each repository in turn from its swarm sources; one failing does not stop the others. */
async function syncSwarmRepos(repos: RepoConfig[], opts: TransferFlags & { retries?: number }, g: ReturnType<typeof globals>, home: Home): Promise<void> {
  const { syncRepo, writeStatus, Status } = await import('../../src/sync/repo-sync.js')
  const { writeRepoStatus } = await import('../../src/runner/status-dir.js')
  const { installStopHandler, onStop, stopRequested } = await import('../../src/runner/stop.js')
  // SIGTERM (-emoff, systemd), SIGINT, SIGHUP: the repository being synced reads "failed"
  // (not "running" forever) and the log says it stopped. The tree is whole at any await
  // (a kill at every apply step is safe: test/sync-kill.test.ts); its lock, left behind,
  // names a dead process and is taken over by the next run.
  installStopHandler(ExitCode.failed)
  // xync.conf status=DIR (DSYNC's DIR/dsync-status/REPO) as the runner writes it; syncRepo keeps the repo's status=.
  const statusDir = home.main.runner.statusDir
  const mark = (repo: RepoConfig, v: '0' | '1' | '2') => void (statusDir && writeRepoStatus(statusDir, { ...repo, statusFile: undefined }, v))
  const ipadd = home.main.runner.ipadd
  let failures = 0
  let lastError: unknown
  for (const repo of repos) {
    const bar = new ProgressBar(process.stderr, !g.json && process.stderr.isTTY === true)
    const unregister = onStop(() => {
      bar.done()
      mark(repo, Status.failed)
      writeStatus(repo, Status.failed)
      warn(t('runner.stoppedLog', { repo: repo.name, signal: stopRequested() ?? '-' }))
    })
    try {
      mark(repo, '2')
      const result = await syncRepo(repo, {
        peers: peersOf(opts.peer), trackers: opts.tracker, connections: opts.connections, noDelete: !opts.delete,
        force: opts.force, localAddress: opts.bind, localAddresses: opts.bind || ipadd.length === 0 ? undefined : ipadd, retries: opts.retries, key: opts.key,
        // xync.conf's dht=true and dht-bootstrap= serve the client too.
        dhtBootstrap: opts.dhtBootstrap.length > 0 ? opts.dhtBootstrap : home.main.dhtBootstrap, dht: opts.dht || home.main.dht,
        rescan: opts.rescan,
        onWarning: m => { bar.done(); warn(m) },
        onMotd: (peer, text) => { if (!g.json) { bar.done(); warn(t('sync.motd', { peer, motd: text.trimEnd() })) } },
        onProgress: progressPrinter(g.json, bar, `${repo.name} `, { repo: repo.name }),
      })
      bar.done()
      mark(repo, '1')
      report(result, g.json)
    } catch (err) {
      bar.done()
      mark(repo, '0')
      // One repo failing must not stop the others; the run still exits non-zero.
      failures++
      lastError = err
      if (repos.length > 1) warn(`dsync: ${repo.name}: ${(err as Error).message}`)
    } finally {
      unregister()
    }
  }
  if (failures === 1 && repos.length === 1) throw lastError
  if (failures > 0) process.exitCode = lastError instanceof DsyncError ? lastError.exitCode : ExitCode.failed
}

/** `dsync -sync REPO` for rsync-fed repositories: the runner's job for those repos, due or not. */
async function runRsyncRepos(cmd: Command, names: string[], force?: boolean): Promise<void> {
  const run = cmd.parent!.commands.find(c => c.name() === 'run')!
  await run.parseAsync([...names, ...(force ? ['--force'] : [])], { from: 'user' })
}
