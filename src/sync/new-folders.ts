import { closeSync, existsSync, mkdirSync, openSync, readdirSync, renameSync, rmSync } from 'node:fs'
import { Worker } from 'node:worker_threads'
import type { ManifestEntry } from '../manifest/entry.js'
import { sha256OfFd, STAGE_DIRS, stagedPath } from './part-writer.js'
import { indexMatcher } from './plan.js'
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
 * The paths go to the thread as one buffer, moved, not copied (folderNames): as an array of
 * strings the thread's heap held each of them (182,105 at 1M files: the thread at ~46 MiB of
 * RSS for its ~20 s, the early transfer's peak; ~16 MiB this way, docs/SCALE.md, h11m17).
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
      const names = folderNames(mkdirs)
      worker = new Worker(new URL('./folders-worker.js', import.meta.url), { workerData: { root, names }, transferList: [names] })
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
 * The folders' paths as UTF-8, each ended by a NUL (which no listed path holds: isSafeRelativePath),
 * in one buffer of its own that the thread takes over: its heap then makes one path string at a time.
 */
export function folderNames(mkdirs: readonly ManifestEntry[]): ArrayBuffer {
  let bytes = 0
  for (const d of mkdirs) bytes += Buffer.byteLength(d.path, 'utf8') + 1
  const names = new ArrayBuffer(bytes)
  const view = Buffer.from(names)
  let at = 0
  for (const d of mkdirs) {
    at += view.write(d.path, at, 'utf8')
    view[at++] = 0
  }
  return names
}

/**
 * Which fetched files the stage workers place ahead: written (or renamed, for a file of many
 * pieces) straight to `<staging>/folders/<path>` once verified, inside the new folders made ahead,
 * so they enter DEST with their folder's one rename at the apply's mkdirs step, and the apply
 * does not rename them one by one. A file whose folder is new, that is not an index file (those go
 * in last) and has no setuid/setgid bit (the apply decides about those); undefined when the plan
 * makes no folder.
 *
 * Why: the apply renamed every file from staging into DEST on the event loop after the
 * transfer: 200,000 files, rename 2.7-2.8 s of a 16-18 s bootstrap (quiet runs of bench sync
 * small, sessions 7-8), with nothing else to do meanwhile. Placed ahead, that work is gone
 * (the file is created at its path instead of under its SHA-256, by the stage worker, during
 * the transfer). Still nothing enters the live tree before it is verified, and only at the apply.
 */
export function aheadFilter(mkdirs: readonly ManifestEntry[], indexFiles: string[]): AheadFilter | undefined {
  if (mkdirs.length === 0) return undefined
  const made = newFolder(mkdirs)
  const isIndex = indexMatcher(indexFiles)
  return entry => {
    if ((entry.mode & 0o6000) !== 0) return undefined
    // Made once: a client entry's path is built from its row at each read (slab-entry.ts), and
    // asked three times per fetched file it was ~0.3 s of a 200,000-file pull's event loop.
    const path = entry.path
    return made(parentOf(path)) && !isIndex(path) ? path : undefined
  }
}

/** The path a fetched file goes ahead to (aheadFilter), undefined when it stays in staging. */
export type AheadFilter = (entry: ManifestEntry) => string | undefined

/**
 * Whether a path is one of the new folders: a binary search of the plan's own list when that is
 * in order (a plan lists them in data.dsync's order, which is JavaScript's string order but for
 * astral characters: checked, not assumed), else a Set of their paths.
 *
 * Why: the Set was ~5 MiB of hash table held through the transfer of a 1M-file bootstrap (182,105
 * folders; heap snapshot, docs/SCALE.md, h11m17). Files arrive folder by folder, so the last
 * folder found answers most asks without a search.
 */
export function newFolder(mkdirs: readonly ManifestEntry[]): (path: string) => boolean {
  for (let i = 1; i < mkdirs.length; i++) {
    if (!(mkdirs[i - 1].path < mkdirs[i].path)) {
      const made = new Set(mkdirs.map(d => d.path))
      return path => made.has(path)
    }
  }
  let last: string | undefined
  return path => {
    if (path === last) return true
    let lo = 0
    let hi = mkdirs.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      const at = mkdirs[mid].path
      if (at === path) {
        last = at
        return true
      }
      if (at < path) lo = mid + 1
      else hi = mid - 1
    }
    return false
  }
}

/**
 * A killed run's `<staging>/folders/` (new folders, and files placed ahead in them) is taken
 * apart before anything else uses staging: each file placed ahead goes back under its
 * staged name (its SHA-256, computed here: a file cut short by the kill gets the name of what
 * it holds, which no plan asks for), so the next run does not fetch it again; then the folders
 * go (they may be another generation's). Synchronous: a run must not stage into it meanwhile.
 */
export function recoverAhead(stagingDir: string): void {
  const root = `${stagingDir}/folders`
  if (!existsSync(root)) return
  for (let i = 0; i < STAGE_DIRS; i++) mkdirSync(`${stagingDir}/${i}`, { recursive: true })
  const walk = (dir: string) => {
    for (const d of readdirSync(dir, { withFileTypes: true })) {
      const path = `${dir}/${d.name}`
      if (d.isDirectory()) walk(path)
      else if (d.isFile()) recoverOne(stagingDir, path)
    }
  }
  walk(root)
  rmSync(root, { recursive: true, force: true })
}

/**
 * One placed file back under its SHA-256; one that cannot be read or moved is removed (it is
 * fetched again) rather than stopping this run and every later one at the same file.
 */
function recoverOne(stagingDir: string, path: string): void {
  try {
    renameSync(path, stagedPath(stagingDir, hashOf(path)))
  } catch {
    rmSync(path, { force: true })
  }
}

function hashOf(path: string): string {
  const fd = openSync(path, 'r')
  try {
    return sha256OfFd(fd)
  } finally {
    closeSync(fd)
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
