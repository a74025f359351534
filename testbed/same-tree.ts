import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync, utimesSync } from 'node:fs'
import { join } from 'node:path'
import { runCli } from './cli.js'
import { OLD_MTIME } from './tree.js'

/** diff -r, a verify of DEST against its own data.dsync (modes, mtimes, links), same data.dsync bytes. */
export async function assertSameTree(source: string, dest: string): Promise<void> {
  execFileSync('diff', ['-r', '--no-dereference', '-x', '.dsync', source, dest])
  const v = await runCli(['verify', dest])
  assert.equal(v.code, 0, v.stdout + v.stderr)
  assert.ok(readFileSync(join(dest, '.dsync/data.dsync')).equals(readFileSync(join(source, '.dsync/data.dsync'))))
}

/** Folders get the same old mtime everywhere, as rsync -a would leave them on every mirror. */
export function settleDirMtimes(root: string): void {
  for (const e of readdirSync(root, { withFileTypes: true })) {
    if (e.isDirectory() && e.name !== '.dsync') settleDirMtimes(join(root, e.name))
  }
  utimesSync(root, OLD_MTIME, OLD_MTIME)
}
