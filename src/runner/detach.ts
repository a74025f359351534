import { spawn } from 'node:child_process'
import { closeSync, mkdirSync, openSync } from 'node:fs'
import { join } from 'node:path'
import { resolveHome } from '../config/home.js'
import { logsDir, rotate } from './logs.js'

/**
 * DSYNC's `-nolog`: the same run, detached in its own session (closing the terminal sends
 * it no SIGHUP), its output appended to logs/dsync-nolog.log. Returns at once.
 */
export function startDetached(homeFlag: string | undefined, runArgs: string[], cliEntry: string): { pid: number; log: string } {
  const home = resolveHome(homeFlag)
  const log = join(logsDir(home), 'dsync-nolog.log')
  mkdirSync(logsDir(home), { recursive: true })
  rotate(log)
  const fd = openSync(log, 'a')
  try {
    const child = spawn(process.execPath, [cliEntry, '--home', home, 'run', ...runArgs], {
      detached: true, stdio: ['ignore', fd, fd], env: process.env,
    })
    child.unref()
    return { pid: child.pid!, log }
  } finally {
    closeSync(fd)
  }
}
