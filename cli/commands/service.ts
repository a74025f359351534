import type { Command } from 'commander'
import { resolveHome } from '../../src/config/home.js'
import { loadHome } from '../../src/config/load.js'
import { DsyncError, ExitCode } from '../../src/errors.js'
import { t } from '../../src/i18n/index.js'
import { formatStatus, type HostStatus } from '../../src/host/status.js'
import { installUnit, UNIT_PATH, unitText } from '../../src/host/systemd.js'
import { cliEntry, globals, printJson } from '../context.js'

/** DSYNC's service verbs: service, stop-service, reload, startup, status. */
export function registerService(program: Command): void {
  program
    .command('service')
    .description('start the DTP host (seeds every repo in dtp/list.conf on tcp/47921); creates dtp/ if missing')
    .option('--foreground', 'stay in the foreground, log to stdout (systemd, Docker)')
    .action(async (opts: { foreground?: boolean }, cmd: Command) => {
      const g = globals(cmd)
      // Fail on a broken home here, with its one-line error, rather than in the background.
      loadHome(g.home)
      // The host stack loads only for the commands that need it, not for every dsync run.
      const { runForeground, startBackground } = await import('../../src/host/daemon.js')
      if (opts.foreground) return runForeground(g.home, g.json)
      const r = await startBackground(g.home, g.json, cliEntry())
      if (g.json) printJson({ ok: true, pid: r.pid, log: r.log })
      else console.log(t('host.started', { pid: r.pid, log: r.log }))
    })

  program
    .command('stop-service')
    .description('stop the DTP host')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = globals(cmd)
      const { stopService } = await import('../../src/host/daemon.js')
      const pid = await stopService(g.home)
      if (g.json) printJson({ ok: true, stopped: pid ?? null })
      else console.log(pid === undefined ? t('host.notRunning', { home: resolveHome(g.home) }) : t('host.stopped', { pid }))
    })
  registerHostControl(program)
}

/** reload, status and startup: talking to (or installing) the running service. */
function registerHostControl(program: Command): void {
  program
    .command('reload')
    .description('re-read xync.conf, repos, dtp/list|firewall|motd.conf and new data.dsync generations (SIGHUP)')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = globals(cmd)
      const { controlRequest } = await import('../../src/host/daemon.js')
      const r = await controlRequest<{ ok: boolean; message: string }>(g.home, 'reload')
      if (!r.ok) throw new DsyncError(ExitCode.config, 'host.reloadFailed', { message: r.message })
      if (g.json) printJson(r)
      else console.log(t('host.reloaded', { message: r.message }))
    })

  program
    .command('status')
    .description('per repo: generation, files, bytes, peers, upload rate, total uploaded')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = globals(cmd)
      const { controlRequest } = await import('../../src/host/daemon.js')
      const r = await controlRequest<{ ok: boolean; status: HostStatus }>(g.home, 'status')
      if (g.json) printJson(r.status)
      else process.stdout.write(formatStatus(r.status))
    })

  program
    .command('startup')
    .description(`install and enable the systemd unit ${UNIT_PATH}`)
    .option('--print', 'print the unit instead of installing it')
    .action((opts: { print?: boolean }, cmd: Command) => {
      const g = globals(cmd)
      const home = resolveHome(g.home)
      if (opts.print) {
        process.stdout.write(unitText(home, cliEntry()))
        return
      }
      installUnit(home, cliEntry())
      console.log(t('host.unitInstalled', { file: UNIT_PATH }))
    })
}
