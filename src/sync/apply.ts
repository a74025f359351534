import { chmodSync, closeSync, copyFileSync, existsSync, fsyncSync, linkSync, lstatSync, lutimesSync, mkdirSync, openSync, renameSync, rmSync, symlinkSync, utimesSync, constants } from 'node:fs'
import { dirname, join } from 'node:path'
import { fsError } from '../errors.js'
import type { ManifestEntry } from '../manifest/entry.js'
import { sameEntry } from '../manifest/slab-entry.js'
import { DSYNC_DIR } from '../manifest/paths.js'
import { ContentIds } from './content-ids.js'
import { applyDeletes } from './deletes.js'
import { moveFoldersIn } from './new-folders.js'
import { aheadPath } from './part-writer.js'
import { indexMatcher, type Plan } from './plan.js'
import type { Staging } from './staging.js'
import { depth } from './tree-paths.js'

export interface ApplyOptions {
  dest: string
  plan: Plan
  staging: Staging
  indexFiles: string[]
  /** Keep setuid/setgid bits from upstream (off: a mirror has no use for them, and as root they would be live). */
  keepSetid?: boolean
  /**
   * Called after each item of a step (with the count so far) and at the end of each step
   * (without); tests use it to kill the process at a chosen point.
   */
  onStep?: (step: string, done?: number) => void
  /** Where the plan's new folders were made ahead (new-folders.ts prepareFolders): moved in, not made. */
  folders?: string
}

/**
 * Moves a staged generation into DEST in the order that keeps the live tree usable at
 * every instant: new folders; new and changed files, then links (hardlinks after the files
 * they share an inode with); index files (Release, Packages, repomd.xml, …) after all
 * others so they never name a file not yet there; then deletions; then folder modes and
 * mtimes. The caller writes DEST's data.dsync last, as the commit record.
 *
 * Every new name is prepared inside `.dsync/staging/` (mode and mtime set there) and enters
 * the tree by one rename(2): no file is opened, chmod'ed or written at a path inside the
 * live tree, so nothing upstream put there (a symlink to /etc/passwd named like our temp
 * file) can redirect a write.
 */
export function applyPlan(opts: ApplyOptions): void {
  const ctx = applyContext(opts)
  moveConflictsAside(ctx)
  ctx.foldersIn = opts.folders !== undefined && moveFoldersIn(opts.folders, ctx.plan.mkdirs, ctx.abs, ctx.writable)
  if (!ctx.foldersIn) {
    for (const d of ctx.plan.mkdirs) {
      ctx.writable(d.path)
      guard(() => mkdirSync(ctx.abs(d.path), { recursive: true, mode: 0o755 }), ctx.abs(d.path))
    }
  }
  ctx.onStep?.('mkdirs')
  placeNewNames(ctx)
  applyDeletes(ctx)
  for (const d of ctx.plan.dirMeta) guard(() => {
    chmodSync(ctx.abs(d.path), d.mode)
    utimesSync(ctx.abs(d.path), d.mtime, d.mtime)
  }, ctx.abs(d.path))
  rmSync(ctx.trash, { recursive: true, force: true })
}

/** What every apply step shares: DEST, the plan, staging and the safe-write helpers. */
export interface ApplyContext {
  dest: string
  plan: Plan
  staging: Staging
  indexFiles: string[]
  trash: string
  abs: (path: string) => string
  /** A fresh temporary name inside staging. */
  tmp: () => string
  /** Gives a read-only parent folder u+wx before writing into it. */
  writable: (path: string) => void
  fileMode: (mode: number) => number
  guard: (fn: () => void, path: string) => void
  onStep?: (step: string, done?: number) => void
  /**
   * The content number of each file of plan.place, by its index there: found once per file by
   * its digest's bytes (no hex string kept per file). Looked up three times per file (counting
   * uses, numbering, placing) the table was 0.36 s of a 200,000-file bootstrap's event loop.
   */
  placeIds: Int32Array
  /** How many paths still need each staged content, by its number: the last one takes the file itself. */
  uses: Uint32Array
  /** DEST with a trailing slash: a file path of the plan (checked safe and normal) is appended, not joined. */
  root: string
  /** Every new folder made ahead went in, with the files placed ahead in it (new-folders.ts). */
  foldersIn: boolean
}

function applyContext(opts: ApplyOptions): ApplyContext {
  let tmpCounter = 0
  const { ids: placeIds, count } = placedIds(opts.plan)
  const uses = new Uint32Array(count)
  for (const id of placeIds) uses[id]++
  const dest = join(opts.dest)
  return {
    dest: opts.dest, plan: opts.plan, staging: opts.staging, indexFiles: opts.indexFiles, placeIds, uses, guard, onStep: opts.onStep,
    root: dest.endsWith('/') ? dest : `${dest}/`, foldersIn: false,
    trash: join(opts.dest, DSYNC_DIR, 'trash'),
    abs: p => join(opts.dest, p),
    tmp: () => join(opts.staging.dir, `.apply-${process.pid}-${tmpCounter++}`),
    writable: makeWritableParents(opts.dest, opts.plan.mkdirs),
    fileMode: mode => (opts.keepSetid ? mode : mode & ~0o6000),
  }
}

/**
 * The placed contents numbered: a fetched one by its number in plan.fetch (every content of a
 * bootstrap: no second table over a million digests), one copied from DEST after those.
 */
function placedIds(plan: Plan): { ids: Int32Array; count: number } {
  const others = new ContentIds()
  const fetched = plan.fetch.size
  const ids = new Int32Array(plan.place.length)
  for (let i = 0; i < ids.length; i++) {
    const digest = plan.place.digestAt(i)
    const id = plan.fetch.idOf(digest)
    ids[i] = id >= 0 ? id : fetched + others.add(digest)
  }
  return { ids, count: fetched + others.size }
}

/** An entry of another type in the way (a file where a folder now goes) is moved aside, not deleted, until the end. */
function moveConflictsAside(ctx: ApplyContext): void {
  let n = 0
  for (const c of ctx.plan.conflicts) {
    mkdirSync(ctx.trash, { recursive: true })
    ctx.writable(c.path)
    guard(() => renameSync(ctx.abs(c.path), join(ctx.trash, `${Date.now()}-c${n++}`)), ctx.abs(c.path))
  }
}

/**
 * New and changed files, mode/mtime touches and links (symlinks, then hardlinks after the
 * files they share an inode with), in two passes: everything else, then index files.
 */
function placeNewNames(ctx: ApplyContext): void {
  const isIndex = indexMatcher(ctx.indexFiles)
  // A hardlink goes in with the later of its own pass and its file's.
  const linkPass = (l: ManifestEntry) => isIndex(l.path) || (l.type === 'h' && isIndex(l.target!))
  const { plan } = ctx
  // In this order within a pass; no object per entry (a million of them at 1M files).
  // `run` gets the entry's index in its list (placeFile: its content number in ctx.placeIds).
  const lists: [{ readonly length: number; at(i: number): ManifestEntry | undefined }, (e: ManifestEntry) => boolean, (ctx: ApplyContext, e: ManifestEntry, i: number) => void, ManifestEntry['type']?][] = [
    [plan.place, e => isIndex(e.path), placeFile],
    [plan.touch, e => isIndex(e.path), touchFile],
    [plan.links, linkPass, placeLink, 'l'],
    [plan.links, linkPass, placeLink, 'h'],
  ]
  let done = 0
  const index: { e: ManifestEntry; i: number; run: (ctx: ApplyContext, e: ManifestEntry, i: number) => void }[] = []
  for (const [list, pass, run, type] of lists) {
    for (let i = 0; i < list.length; i++) {
      // A file's entry is made here, once (plan.place keeps rows: entry-list.ts).
      const e = list.at(i)!
      if (type !== undefined && e.type !== type) continue
      // A file in DEST already (placed ahead in a folder moved in; never an index file) makes
      // no string: a bootstrap's million paths were made twice here, to be dropped (docs/SCALE.md).
      if (list === plan.place && inAlready(ctx, e, i)) ctx.onStep?.('files', ++done)
      else if (pass(e)) index.push({ e, i, run })
      else {
        run(ctx, e, i)
        ctx.onStep?.('files', ++done)
      }
    }
  }
  ctx.onStep?.('files')
  done = 0
  for (const i of indexOrder(index)) {
    i.run(ctx, i.e, i.i)
    ctx.onStep?.('index', ++done)
  }
  ctx.onStep?.('index')
}

/**
 * Whether plan.place[at] (`f`) is in DEST already: the stage worker placed it ahead at its own
 * path (new-folders.ts) and its folder went in whole. Counted as a use of its content, as placeFile does.
 */
function inAlready(ctx: ApplyContext, f: ManifestEntry, at: number): boolean {
  if (!ctx.foldersIn) return false
  const id = ctx.placeIds[at]
  if (!ctx.plan.fetch.placedAheadAt(id, f)) return false
  ctx.uses[id]--
  return true
}

/** Places plan.place[at] (`f`). */
function placeFile(ctx: ApplyContext, f: ManifestEntry, at: number): void {
  const id = ctx.placeIds[at]
  const left = --ctx.uses[id]
  // A file the stage worker placed ahead at its own path (new-folders.ts) whose folder went in
  // is in DEST already and never comes here (placeNewNames asks inAlready first); else it goes in alone.
  const ahead = ctx.plan.fetch.placedAt(id)
  const dst = ctx.root + f.path
  if (sameEntry(ahead, f)) return placeAheadAlone(ctx, f, dst)
  // The staged file's name, made when it is moved (a string kept per file was ~80 bytes each);
  // another path of a content placed ahead copies the one placed (in DEST: placed before it).
  const src = ahead ? ctx.root + ahead.path : ctx.staging.path(f.sha256!.toString('hex'))
  const copy = left > 0 || ahead !== undefined
  ctx.writable(f.path)
  guard(() => {
    // The last use takes the staged file itself (it is ours, inside staging); an earlier
    // use takes a copy made beside it. Mode and mtime are set before the one rename.
    // The stage worker set them already on a file fetched in this run for this one path.
    let t = src
    if (copy) {
      t = ctx.tmp()
      copyFileSync(src, t, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE)
      syncFile(t)
    }
    const mode = ctx.fileMode(f.mode) & 0o7777
    if (copy || !ctx.staging.hasMetaAt(id, f) || mode !== (f.mode & 0o1777)) {
      chmodSync(t, mode)
      utimesSync(t, f.mtime, f.mtime)
    }
    renameSync(t, dst)
  }, dst)
}

/**
 * A file placed ahead whose folder did not go in whole (the folders made ahead could not all be
 * moved, so the apply made them in place): it goes in by itself, unless it went with a folder
 * moved before the failure.
 */
function placeAheadAlone(ctx: ApplyContext, f: ManifestEntry, dst: string): void {
  const src = aheadPath(ctx.staging.dir, f.path)
  ctx.writable(f.path)
  guard(() => {
    if (existsSync(src)) renameSync(src, dst)
    // Else it went in with a folder moved before the failure: it must be there, whole.
    else if (!isFileOfSize(dst, f.size)) throw Object.assign(new Error('a file placed ahead is missing'), { code: 'ENOENT' })
  }, dst)
}

function isFileOfSize(path: string, size: number): boolean {
  try {
    const st = lstatSync(path)
    return st.isFile() && st.size === size
  } catch {
    return false
  }
}

function placeLink(ctx: ApplyContext, l: ManifestEntry): void {
  const t = ctx.tmp()
  ctx.writable(l.path)
  guard(() => {
    if (l.type === 'l') {
      symlinkSync(l.target!, t)
      lutimesSync(t, l.mtime, l.mtime)
    } else linkSync(ctx.abs(l.target!), t)
    renameSync(t, ctx.abs(l.path))
    // rename(2) between two names of one inode does nothing and leaves the source.
    rmSync(t, { force: true })
  }, ctx.abs(l.path))
}

function touchFile(ctx: ApplyContext, f: ManifestEntry): void {
  guard(() => {
    ctx.writable(f.path)
    chmodSync(ctx.abs(f.path), ctx.fileMode(f.mode))
    utimesSync(ctx.abs(f.path), f.mtime, f.mtime)
  }, ctx.abs(f.path))
}

/**
 * Folders that are read-only upstream (0555) are so in DEST too, after the apply; before
 * writing into one it gets u+wx, and the final folder pass (plan.dirMeta, which lists every
 * folder the apply touches) sets its real mode back.
 */
function makeWritableParents(dest: string, made: readonly ManifestEntry[]): (path: string) => void {
  // The folders the apply makes are 0755 until the folder pass: no lstat per folder (a
  // 200,000-file bootstrap into 36,662 new folders: lstat 0.25 s of its event loop).
  const done = new Set<string>(made.map(d => d.path))
  return path => {
    const parent = dirname(path)
    if (parent === '.' || done.has(parent)) return
    done.add(parent)
    try {
      const st = lstatSync(join(dest, parent))
      if (st.isDirectory() && (st.mode & 0o300) !== 0o300) chmodSync(join(dest, parent), (st.mode & 0o7777) | 0o300)
    } catch {
      // a folder still to be made: mkdir gives it 0755
    }
  }
}

/**
 * Index files name the files below their folder (dists/stable/Release names
 * main/binary-amd64/Packages and its by-hash links): the deepest go in first, a hardlink right
 * after the file it links to, so no index file is ever newer than one it names.
 */
function indexOrder<T extends { e: ManifestEntry }>(items: T[]): T[] {
  const key = (e: ManifestEntry) => depth(e.type === 'h' ? e.target! : e.path)
  return [...items].sort((a, b) => key(b.e) - key(a.e))
}

function syncFile(path: string): void {
  const fd = openSync(path, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

function guard(fn: () => void, path: string): void {
  try {
    fn()
  } catch (err) {
    throw fsError(err, path, 'write')
  }
}
