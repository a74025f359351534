import { realpathSync } from 'node:fs'
import type { Command } from 'commander'
import type { IntRange } from '../src/config/defaults.js'
import { parseInteger } from '../src/config/integers.js'
import { DsyncError, ExitCode } from '../src/errors.js'
import { loadHome, type Home } from '../src/config/load.js'
import { jsonSafe, terminalSafe } from '../src/ui/terminal-text.js'

/** Global options, read from the root program so every command sees the same. */
export interface GlobalOptions {
  home?: string
  json: boolean
}

export function globals(cmd: Command): GlobalOptions {
  let root = cmd
  while (root.parent) root = root.parent
  const o = root.opts<{ home?: string; json?: boolean }>()
  return { home: o.home, json: o.json === true }
}

/** Loads the home and prints its warnings (unknown keys) to stderr, one line each. */
export function openHome(g: GlobalOptions): Home {
  const home = loadHome(g.home)
  for (const w of home.warnings) process.stderr.write(w + '\n')
  return home
}

export function printJson(value: unknown): void {
  process.stdout.write(jsonSafe(JSON.stringify(value)) + '\n')
}

/** A message line on stderr; it may carry remote text (motd, host errors, file names): made terminal-safe. */
export function warn(message: string): void {
  process.stderr.write(terminalSafe(message) + '\n')
}

/** A line on stdout that may carry remote text (file names), made terminal-safe. */
export function say(line: string): void {
  process.stdout.write(terminalSafe(line) + '\n')
}

/**
 * The script this CLI runs from, for the background service and the systemd unit to start
 * it again: the library never guesses where the CLI lives (it may be bundled, or installed
 * under a bin/ symlink).
 */
export function cliEntry(): string {
  return realpathSync(process.argv[1])
}

/**
 * A commander parser for an integer flag within a setting's range (src/config/defaults.ts):
 * a bad value is a one-line usage error. Flags get no commander default, so an unset flag
 * leaves the config file's value (or the named default) in force.
 */
export function intFlag(flag: string, range: IntRange): (value: string) => number {
  return value => {
    try {
      return parseInteger(value, range)
    } catch {
      throw new DsyncError(ExitCode.usage, 'cli.badNumber', { flag, value, min: range.min, max: range.max })
    }
  }
}
