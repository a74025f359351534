#!/usr/bin/env node
import { Command, CommanderError } from 'commander'
import { DsyncError, ExitCode } from '../src/errors.js'
import { t } from '../src/i18n/index.js'
import { terminalSafe } from '../src/ui/terminal-text.js'
import { exitWithParent } from '../src/util/parent-watch.js'
import { endProcess } from './exit-at-once.js'
import { rewriteLegacyVerbs } from './legacy.js'
import { verbOf } from './verb.js'

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

/**
 * Each command's module, by the verbs it registers (in the order `dsync --help` lists them). Only
 * the module of the verb being run is loaded: every module here pulls in its own imports, and a
 * process that loaded all of them spent ~15 ms of CPU more starting (19 of its 48 modules), a
 * tenth of a whole `gendsync --changed` start-up.
 */
type Register = (program: Command) => void
const COMMANDS: [verbs: string[], load: () => Promise<Register>][] = [
  [['init'], async () => (await import('./commands/init.js')).registerInit],
  [['gendsync'], async () => (await import('./commands/gendsync.js')).registerGendsync],
  [['verify'], async () => (await import('./commands/verify.js')).registerVerify],
  [['magnet'], async () => (await import('./commands/magnet.js')).registerMagnet],
  [['key'], async () => (await import('./commands/key.js')).registerKey],
  [['tracker'], async () => (await import('./commands/tracker.js')).registerTracker],
  [['service', 'stop-service', 'reload', 'status', 'startup'], async () => (await import('./commands/service.js')).registerService],
  [['pull'], async () => (await import('./commands/pull.js')).registerPull],
  [['sync'], async () => (await import('./commands/sync.js')).registerSync],
  [['run', 'emoff', 'test', 'cleanlog'], async () => (await import('./commands/run.js')).registerRun],
  [['diff'], async () => (await import('./commands/pull.js')).registerDiff],
  [['demo'], async () => (await import('./commands/demo.js')).registerDemo],
]
const VERBS = COMMANDS.flatMap(([verbs]) => verbs)
/** Commands another one runs through the program: `sync REPO` is the run command's action for REPO. */
const ALSO: Record<string, string> = { sync: 'run' }

/** The program with the command `verb` only, or with every command (help, no verb, a verb it does not know). */
export async function buildProgram(verb?: string): Promise<Command> {
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
  const all = verb === undefined || !VERBS.includes(verb)
  const wanted = COMMANDS.filter(([verbs]) => all || verbs.includes(verb) || verbs.includes(ALSO[verb]))
  for (const register of await Promise.all(wanted.map(([, load]) => load()))) register(program)
  return program
}

export async function main(argv: string[]): Promise<number> {
  const args = rewriteLegacyVerbs(argv, VERBS)
  try {
    const program = await buildProgram(verbOf(args))
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
exitWithParent()
main(process.argv.slice(2)).then(code => {
  finished = true
  endProcess(code)
})
