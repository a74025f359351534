import { readFileSync } from 'node:fs'
import { loadMotdPath } from '../config/dtp-config.js'

/** The largest welcome message sent; a motd is a few lines, not a file transfer. */
const MAX_MOTD = 16 * 1024

/**
 * Reads the welcome message named by dtp/motd.conf (or rsyncd.conf's motd file). A missing
 * message file is not fatal for the service: it returns the reason so the log can say it.
 */
export function readMotd(motdConf: string, rsyncdConf?: string): { text: string; path?: string; problem?: string } {
  const path = loadMotdPath(motdConf, rsyncdConf)
  if (path === undefined) return { text: '' }
  try {
    const text = readFileSync(path, 'utf8')
    return { text: text.length > MAX_MOTD ? text.slice(0, MAX_MOTD) : text, path }
  } catch (err) {
    return { text: '', path, problem: `${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }
  }
}
