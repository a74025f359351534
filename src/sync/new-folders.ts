import { renameSync } from 'node:fs'
import { Worker } from 'node:worker_threads'
import type { ManifestEntry } from '../manifest/entry.js'
import { parentOf } from './tree-paths.js'

/**
 * The plan's new folders, made ahead under `<staging>/folders/` (same relative paths) while
 * the transfer runs, by a worker thread (folders-worker.ts), not the event loop. The apply then
 * moves each new folder whose parent is not new into DEST by one rename (moveFoldersIn): the
 * live tree still gains its folders only at the apply, all of them before any file, as before.
 *
 * Why: the apply made them one mkdirSync at a time on the event loop after the transfer. A
 * 1 GiB / 20,000-file bootstrap (3,805 folders) spent 2.4 s of its 12 s there (CPU profile,
 * bench sync, final5), kernel time: while another tree was being deleted, ext4 (no journal
 * here) skips every recently freed inode one by one when it allocates one (perf:
 * recently_deleted, find_get_block_common). rsync makes the same folders, but in its
 * generator process while its receiver writes files.
 *
 * Why a thread of their own: made one `fs.promises.mkdir` at a time, each folder waited for a
 * turn of the event loop, which the transfer keeps busy: the 200,000-file bootstrap's 9,181
 * folders were not done when its transfer was (the apply waited 1.4 s for them, the loop idle)
 * and their promises cost the loop 1.2 s (quiet run after session 6). One at a time still:
 * ext4 makes folders of one parent one by one anyway (four at once spun on the parent's lock:
 * 3.4 s of CPU for 9,173 folders after a big delete).
 *
 * Resolves to the folder holding them, or undefined when none are needed or making them
 * failed (the apply then makes them in place). Never rejects.
 */
export function prepareFolders(stagingDir: string, mkdirs: readonly ManifestEntry[]): Promise<string | undefined> {
  if (mkdirs.length === 0) return Promise.resolve(undefined)
  const root = `${stagingDir}/folders`
  return new Promise(resolve => {
    let worker: Worker
    try {
      worker = new Worker(new URL('./folders-worker.js', import.meta.url), { workerData: { root, paths: mkdirs.map(d => d.path) } })
    } catch {
      return resolve(undefined)
    }
    // A pull that fails meanwhile does not wait for it to exit.
    worker.unref()
    worker.once('message', (ok: boolean) => resolve(ok ? root : undefined))
    worker.once('error', () => resolve(undefined))
    worker.once('exit', () => resolve(undefined))
  })
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
