#!/usr/bin/env node
import { Command, CommanderError } from 'commander'
import { DsyncError, ExitCode } from '../src/errors.js'
import { t } from '../src/i18n/index.js'
import { terminalSafe } from '../src/ui/terminal-text.js'
import { registerDemo } from './commands/demo.js'
import { registerGendsync } from './commands/gendsync.js'
import { registerInit } from './commands/init.js'
import { registerKey } from './commands/key.js'
import { registerMagnet } from './commands/magnet.js'
import { registerDiff, registerPull } from './commands/pull.js'
import { registerSync } from './commands/sync.js'
import { registerRun } from './commands/run.js'
import { registerService } from './commands/service.js'
import { registerVerify } from './commands/verify.js'
import { registerTracker } from './commands/tracker.js'
import { rewriteLegacyVerbs } from './legacy.js'

const EXIT_CODES = `
Exit codes:
  0  success
  1  the command found what it checks for (verify: mismatches) or failed
  2  usage error (unknown command or option)
  3  configuration error (xync.conf, repos/*.conf, dtp/*.conf)
  4  bad data (malformed or hostile data.dsync, .torrent, missing generation)
  5  filesystem error (missing path, permission, disk full)
  6  network error
  7  another dsync process holds the repository's lock

Legacy DSYNC spellings work too: dsync -gendsync == dsync gendsync.
Bare "dsync" syncs every due repository (== dsync run); "dsync -nolog" does it in the
background; -emoff, -test, -cleanlog, -force as in DSYNC.
Home: --home DIR, else $DXYNC_HOME, else ~/dxync.`

export function buildProgram(): Command {
  const program = new Command()
  program
    .name('dsync')
    .description('Publish, seed and sync mirror repositories over BitTorrent (DSYNC DTP compatible)')
    .version(process.env.npm_package_version ?? '0.1.0')
    .option('--home <dir>', 'dsync home folder (default: $DXYNC_HOME or ~/dxync)')
    .option('--json', 'machine-readable output (one JSON object per line)')
    .addHelpText('after', EXIT_CODES)
    .showHelpAfterError('(run "dsync --help" for usage)')
    .exitOverride()
  registerInit(program)
  registerGendsync(program)
  registerVerify(program)
  registerMagnet(program)
  registerKey(program)
  registerTracker(program)
  registerService(program)
  registerPull(program)
  registerSync(program)
  registerRun(program)
  registerDiff(program)
  registerDemo(program)
  return program
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram()
  const args = rewriteLegacyVerbs(argv, program.commands.map(c => c.name()))
  try {
    await program.parseAsync(args, { from: 'user' })
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.ok
  } catch (err) {
    return report(err)
  }
}

function report(err: unknown): number {
  if (err instanceof CommanderError) {
    // Help and version exit 0; commander already printed the usage error itself.
    return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage
  }
  if (err instanceof DsyncError) {
    // Error texts can carry what a host or a torrent said (URLs, names, reasons).
    process.stderr.write(`dsync: ${terminalSafe(err.message)}\n`)
    return err.exitCode
  }
  const e = err instanceof Error ? err : new Error(String(err))
  process.stderr.write(`dsync: ${terminalSafe(t('cli.internal', { message: e.message }))}\n`)
  if (process.env.DSYNC_DEBUG) process.stderr.write(`${e.stack}\n`)
  return ExitCode.failed
}

let finished = false
// If the event loop empties while a command still awaits something (a dropped socket, a
// promise nothing will settle), Node would exit 0 with nothing said: a silent false success.
process.on('beforeExit', () => {
  if (finished) return
  finished = true
  process.stderr.write(`dsync: ${t('cli.unfinished')}\n`)
  process.exitCode = ExitCode.failed
})
main(process.argv.slice(2)).then(code => {
  finished = true
  process.exitCode = code
})
