import { chmodSync, closeSync, copyFileSync, fsyncSync, linkSync, lstatSync, lutimesSync, mkdirSync, openSync, renameSync, rmdirSync, rmSync, symlinkSync, unlinkSync, utimesSync, constants } from 'node:fs'
import { dirname, join } from 'node:path'
import { fsError } from '../errors.js'
import type { ManifestEntry } from '../manifest/entry.js'
import { DSYNC_DIR } from '../manifest/paths.js'
import { indexMatcher, type Plan } from './plan.js'
import type { Staging } from './staging.js'

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
  const { dest, plan, staging } = opts
  const isIndex = indexMatcher(opts.indexFiles)
  const abs = (p: string) => join(dest, p)
  const trash = join(dest, DSYNC_DIR, 'trash')
  const fileMode = (mode: number) => (opts.keepSetid ? mode : mode & ~0o6000)
  let tmpCounter = 0
  const tmp = () => join(staging.dir, `.apply-${process.pid}-${tmpCounter++}`)
  const writable = makeWritableParents(dest)

  // An entry of another type in the way (a file where a folder now goes) is moved aside,
  // not deleted, until the end.
  for (const c of plan.conflicts) {
    mkdirSync(trash, { recursive: true })
    writable(c.path)
    guard(() => renameSync(abs(c.path), join(trash, `${Date.now()}-${tmpCounter++}`)), abs(c.path))
  }
  for (const d of plan.mkdirs) {
    writable(d.path)
    guard(() => mkdirSync(abs(d.path), { recursive: true, mode: 0o755 }), abs(d.path))
  }
  opts.onStep?.('mkdirs')

  // How many paths still need each staged content: the last one takes the file itself.
  const uses = new Map<string, number>()
  for (const f of plan.place) uses.set(hex(f), (uses.get(hex(f)) ?? 0) + 1)
  const placeFile = (f: ManifestEntry) => {
    const h = hex(f)
    const left = uses.get(h)! - 1
    uses.set(h, left)
    const src = staging.path(h)
    writable(f.path)
    guard(() => {
      // The last use takes the staged file itself (it is ours, inside staging); an earlier
      // use takes a copy made beside it. Mode and mtime are set before the one rename.
      let t = src
      if (left > 0) {
        t = tmp()
        copyFileSync(src, t, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE)
        syncFile(t)
      }
      chmodSync(t, fileMode(f.mode))
      utimesSync(t, f.mtime, f.mtime)
      renameSync(t, abs(f.path))
    }, abs(f.path))
  }
  const placeLink = (l: ManifestEntry) => {
    const t = tmp()
    writable(l.path)
    guard(() => {
      if (l.type === 'l') {
        symlinkSync(l.target!, t)
        lutimesSync(t, l.mtime, l.mtime)
      } else linkSync(abs(l.target!), t)
      renameSync(t, abs(l.path))
      // rename(2) between two names of one inode does nothing and leaves the source.
      rmSync(t, { force: true })
    }, abs(l.path))
  }
  const touch = (f: ManifestEntry) => guard(() => {
    writable(f.path)
    chmodSync(abs(f.path), fileMode(f.mode))
    utimesSync(abs(f.path), f.mtime, f.mtime)
  }, abs(f.path))

  // A hardlink goes in with the later of its own pass and its file's.
  const linkPass = (l: ManifestEntry) => isIndex(l.path) || (l.type === 'h' && isIndex(l.target!))
  const items = [
    ...plan.place.map(e => ({ e, pass: isIndex(e.path), run: placeFile })),
    ...plan.touch.map(e => ({ e, pass: isIndex(e.path), run: touch })),
    ...plan.links.filter(l => l.type === 'l').map(e => ({ e, pass: linkPass(e), run: placeLink })),
    ...plan.links.filter(l => l.type === 'h').map(e => ({ e, pass: linkPass(e), run: placeLink })),
  ]
  for (const pass of [false, true]) {
    const step = pass ? 'index' : 'files'
    let done = 0
    const these = items.filter(i => i.pass === pass)
    for (const i of pass ? indexOrder(these) : these) {
      i.run(i.e)
      opts.onStep?.(step, ++done)
    }
    opts.onStep?.(step)
  }

  let deleted = 0
  for (const d of plan.deletes) {
    writable(d.path)
    guard(() => (d.type === 'd' ? rmdirSync(abs(d.path)) : unlinkSync(abs(d.path))), abs(d.path))
    opts.onStep?.('deletes', ++deleted)
  }
  opts.onStep?.('deletes')
  for (const d of plan.dirMeta) guard(() => {
    chmodSync(abs(d.path), d.mode)
    utimesSync(abs(d.path), d.mtime, d.mtime)
  }, abs(d.path))
  rmSync(trash, { recursive: true, force: true })
}

/**
 * Folders that are read-only upstream (0555) are so in DEST too, after the apply; before
 * writing into one it gets u+wx, and the final folder pass (plan.dirMeta, which lists every
 * folder the apply touches) sets its real mode back.
 */
function makeWritableParents(dest: string): (path: string) => void {
  const done = new Set<string>()
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

function depth(path: string): number {
  let d = 0
  for (const ch of path) if (ch === '/') d++
  return d
}

function syncFile(path: string): void {
  const fd = openSync(path, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

function hex(f: ManifestEntry): string {
  return f.sha256!.toString('hex')
}

function guard(fn: () => void, path: string): void {
  try {
    fn()
  } catch (err) {
    throw fsError(err, path, 'write')
  }
}
