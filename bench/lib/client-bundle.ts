import { execFileSync } from 'node:child_process'
import { existsSync, rmSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'

/**
 * What a user runs: `npm install` gives the bundle (one file; tsc's output is ~180 modules,
 * resolved and linked one by one at every start), so that is the client a bench measures,
 * bundled from `root`'s dist/ (esbuild, ~1 s) into a folder of the run's own: rebuilding
 * dist/bundle/ at every start took its files from under any job running that bundle at the
 * same moment (a pull of another bench, a --base-cli). In dist/, beside bundle/, so the bundle
 * finds package.json where the installed one does. `use` gets the bundle's CLI; the folder is
 * removed when it returns.
 */
export async function withRunBundle<T>(root: string, use: (cli: string) => Promise<T>): Promise<T> {
  const dir = join(root, 'dist', `bundle-run-${process.pid}`)
  try {
    execFileSync(process.execPath, [join(root, 'scripts', 'bundle.mjs'), dir], { cwd: root, stdio: 'inherit' })
    return await use(join(dir, 'dsync.js'))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Whether `cli` is a bundle (dist/bundle/ or a run's own, above) rather than tsc's dist/cli/main.js. */
export function isBundleCli(cli: string): boolean {
  return /\/bundle(-run-\d+)?\/([^/]+\.js|dsync)$/.test(cli)
}

/**
 * The command line an operator's `dsync` is for the build `cli`, before its own arguments: a
 * bundle's bin (package.json's since session 20: the sh script `dsync` beside dsync.js, which
 * execs node on main.js or gendsync.js) run as it is; else `node CLI` (tsc's dist/cli/main.js, or
 * a bundle made before the bin was a script, whose bin was dsync.js itself).
 */
export function installedCommand(cli: string): { cmd: string; args: string[]; isBin: boolean } {
  const bin = basename(cli) === 'dsync' ? cli : join(dirname(cli), 'dsync')
  if (isBundleCli(cli) && (basename(cli) === 'dsync' || basename(cli) === 'dsync.js') && existsSync(bin)) return { cmd: bin, args: [], isBin: true }
  return { cmd: process.execPath, args: [cli], isBin: false }
}

/**
 * installedCommand with Node's own flags `nodeArgs` (a flag's value may follow it): the bin gets
 * them through NODE_OPTIONS (`env`, unset when there are none), since it execs node itself. A
 * flag Node refuses there (`--cpu-prof`: process.allowedNodeEnvironmentFlags) cannot reach the
 * bin's node, so the build runs as `node FLAGS CLI` instead (a bundle's launcher passes them on
 * to its child).
 */
export function installedRun(cli: string, nodeArgs: string[] = []): { cmd: string; args: string[]; env?: NodeJS.ProcessEnv; isBin: boolean } {
  const command = installedCommand(cli)
  if (nodeArgs.length === 0) return command
  const flags = nodeArgs.filter(a => a.startsWith('-')).map(a => a.split('=')[0])
  if (!command.isBin || !flags.every(f => process.allowedNodeEnvironmentFlags.has(f))) return { cmd: process.execPath, args: [...nodeArgs, cli], isBin: false }
  return { ...command, env: { ...process.env, NODE_OPTIONS: [process.env.NODE_OPTIONS ?? '', ...nodeArgs].join(' ').trim() } }
}

/** The build `cli` as a bench's notes name it: the command run, and what it is. */
export function describeCli(cli: string, modulesCli: string): string {
  if (cli === modulesCli) return 'node dist/cli/main.js (tsc output, --modules)'
  const command = installedCommand(cli)
  if (command.isBin) return `${command.cmd} (the installed command: the bundle's bin)`
  return `node ${cli}${isBundleCli(cli) ? ' (the installed bundle)' : ''}`
}
