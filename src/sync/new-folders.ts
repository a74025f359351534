import { renameSync } from 'node:fs'
import { mkdir, rm } from 'node:fs/promises'
import type { ManifestEntry } from '../manifest/entry.js'
import { parentOf } from './tree-paths.js'

/**
 * The plan's new folders, made ahead under `<staging>/folders/` (same relative paths) while
 * the transfer runs, by libuv's thread pool, not the event loop. The apply then moves each
 * new folder whose parent is not new into DEST by one rename (moveFoldersIn): the live tree
 * still gains its folders only at the apply, all of them before any file, as before.
 *
 * Why: the apply made them one mkdirSync at a time on the event loop after the transfer. A
 * 1 GiB / 20,000-file bootstrap (3,805 folders) spent 2.4 s of its 12 s there (CPU profile,
 * bench sync, final5), kernel time: while another tree was being deleted, ext4 (no journal
 * here) skips every recently freed inode one by one when it allocates one (perf:
 * recently_deleted, find_get_block_common). rsync makes the same folders, but in its
 * generator process while its receiver writes files.
 *
 * Resolves to the folder holding them, or undefined when none are needed or making them
 * failed (the apply then makes them in place). Never rejects.
 */
export async function prepareFolders(stagingDir: string, mkdirs: readonly ManifestEntry[]): Promise<string | undefined> {
  if (mkdirs.length === 0) return undefined
  const root = `${stagingDir}/folders`
  try {
    // A killed run's may hold folders of another plan: they must never reach DEST.
    await rm(root, { recursive: true, force: true })
    // One at a time, each on a pool thread: ext4 makes folders of one parent one by one anyway
    // (four at once spun on the parent's lock: 3.4 s of CPU for 9,173 folders after a big delete).
    // `recursive` also makes the parents that DEST has already (never moved in).
    for (const d of mkdirs) await mkdir(`${root}/${d.path}`, { mode: 0o755, recursive: true })
    return root
  } catch {
    return undefined
  }
}

/**
 * Moves the folders prepareFolders made into DEST: one rename per new folder whose parent
 * is not new (a bootstrap: a handful). `writable` gives a read-only parent u+wx first. False
 * when one could not go (something now at its path, another filesystem): the caller makes
 * the rest in place (mkdir -p of each, which keeps those already moved).
 */
export function moveFoldersIn(root: string, mkdirs: readonly ManifestEntry[], abs: (path: string) => string, writable: (path: string) => void): boolean {
  const planned = new Set(mkdirs.map(d => d.path))
  for (const d of mkdirs) {
    if (planned.has(parentOf(d.path))) continue
    writable(d.path)
    try {
      renameSync(`${root}/${d.path}`, abs(d.path))
    } catch {
      return false
    }
  }
  return true
}
