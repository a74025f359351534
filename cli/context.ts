import { realpathSync } from 'node:fs'
import type { Command } from 'commander'
import { loadHome, type Home } from '../src/config/load.js'

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
  process.stdout.write(JSON.stringify(value) + '\n')
}

export function warn(message: string): void {
  process.stderr.write(message + '\n')
}

/**
 * The script this CLI runs from, for the background service and the systemd unit to start
 * it again: the library never guesses where the CLI lives (it may be bundled, or installed
 * under a bin/ symlink).
 */
export function cliEntry(): string {
  return realpathSync(process.argv[1])
}
