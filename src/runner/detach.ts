import { spawn } from 'node:child_process'
import { closeSync, mkdirSync, openSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { resolveHome } from '../config/home.js'
import { logsDir } from './logs.js'

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url))

/**
 * DSYNC's `-nolog`: the same run, detached in its own session (closing the terminal sends
 * it no SIGHUP), its output appended to logs/dsync-nolog.log. Returns at once.
 */
export function startDetached(homeFlag: string | undefined, runArgs: string[]): { pid: number; log: string } {
  const home = resolveHome(homeFlag)
  const log = join(logsDir(home), 'dsync-nolog.log')
  mkdirSync(logsDir(home), { recursive: true })
  const fd = openSync(log, 'a')
  try {
    const child = spawn(process.execPath, [CLI, '--home', home, 'run', ...runArgs], {
      detached: true, stdio: ['ignore', fd, fd], env: process.env,
    })
    child.unref()
    return { pid: child.pid!, log }
  } finally {
    closeSync(fd)
  }
}
