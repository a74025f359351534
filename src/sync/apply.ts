import { chmodSync, copyFileSync, linkSync, lutimesSync, mkdirSync, renameSync, rmdirSync, rmSync, symlinkSync, unlinkSync, utimesSync, constants } from 'node:fs'
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
  /** Called between steps; tests use it to kill the process at a chosen point. */
  onStep?: (step: string) => void
}

/**
 * Moves a staged generation into DEST in the order that keeps the live tree usable at
 * every instant: new folders; new and changed files, links first, index files (Release,
 * Packages, repomd.xml, …) after them so they never name a file not yet there; then
 * deletions; then folder modes and mtimes. Every file appears by rename(2), whole, with its
 * mode and mtime already set. The caller writes DEST's data.dsync last, as the commit record.
 */
export function applyPlan(opts: ApplyOptions): void {
  const { dest, plan, staging } = opts
  const isIndex = indexMatcher(opts.indexFiles)
  const abs = (p: string) => join(dest, p)
  const trash = join(dest, DSYNC_DIR, 'trash')

  // An entry of another type in the way (a file where a folder now goes) is moved aside,
  // not deleted, until the end.
  for (const c of plan.conflicts) {
    mkdirSync(trash, { recursive: true })
    guard(() => renameSync(abs(c.path), join(trash, `${Date.now()}-${Math.random().toString(36).slice(2)}`)), abs(c.path))
  }
  for (const d of plan.mkdirs) guard(() => mkdirSync(abs(d.path), { recursive: true, mode: 0o755 }), abs(d.path))
  opts.onStep?.('mkdirs')

  // How many paths still need each staged content: the last one takes the file itself.
  const uses = new Map<string, number>()
  for (const f of plan.place) uses.set(hex(f), (uses.get(hex(f)) ?? 0) + 1)
  const placeFile = (f: ManifestEntry) => {
    const h = hex(f)
    const left = uses.get(h)! - 1
    uses.set(h, left)
    const src = staging.path(h)
    const tmp = join(dirname(abs(f.path)), `.${h.slice(0, 16)}.dsync-tmp`)
    guard(() => {
      if (left > 0) copyFileSync(src, tmp, constants.COPYFILE_FICLONE)
      else renameSync(src, tmp)
      chmodSync(tmp, f.mode)
      utimesSync(tmp, f.mtime, f.mtime)
      renameSync(tmp, abs(f.path))
    }, abs(f.path))
  }
  const placeLink = (l: ManifestEntry) => {
    const tmp = join(dirname(abs(l.path)), `.link-${Math.random().toString(36).slice(2)}.dsync-tmp`)
    guard(() => {
      if (l.type === 'l') {
        symlinkSync(l.target!, tmp)
        lutimesSync(tmp, l.mtime, l.mtime)
      } else linkSync(abs(l.target!), tmp)
      renameSync(tmp, abs(l.path))
    }, abs(l.path))
  }
  const touch = (f: ManifestEntry) => guard(() => {
    chmodSync(abs(f.path), f.mode)
    utimesSync(abs(f.path), f.mtime, f.mtime)
  }, abs(f.path))

  for (const pass of [false, true]) {
    for (const f of plan.place) if (isIndex(f.path) === pass) placeFile(f)
    for (const f of plan.touch) if (isIndex(f.path) === pass) touch(f)
    // Hardlinks after the files they link to; symlinks may point anywhere, order is free.
    for (const l of plan.links) if (isIndex(l.path) === pass && l.type === 'l') placeLink(l)
    for (const l of plan.links) if (isIndex(l.path) === pass && l.type === 'h') placeLink(l)
    opts.onStep?.(pass ? 'index' : 'files')
  }

  for (const d of plan.deletes) {
    guard(() => (d.type === 'd' ? rmdirSync(abs(d.path)) : unlinkSync(abs(d.path))), abs(d.path))
  }
  opts.onStep?.('deletes')
  for (const d of plan.dirMeta) guard(() => {
    chmodSync(abs(d.path), d.mode)
    utimesSync(abs(d.path), d.mtime, d.mtime)
  }, abs(d.path))
  rmSync(trash, { recursive: true, force: true })
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
