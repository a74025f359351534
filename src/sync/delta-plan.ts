import { lstatSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { DsyncError, ExitCode } from '../errors.js'
import type { Delta } from '../generation/delta.js'
import { isSafeRelativePath, type ManifestEntry } from '../manifest/entry.js'
import { unescapePath } from '../manifest/escape.js'
import { parseEntryLine } from '../manifest/format.js'
import { DSYNC_DIR } from '../manifest/paths.js'
import { fromStats, readLinkTarget, type ScannedEntry } from '../manifest/scan.js'
import { fileOr, hashesFor, planEntries, type Plan } from './plan.js'
import { parentOf } from './tree-paths.js'
import { headerValue, keyAt, lowerBoundIn, type ListLines } from './list-lines.js'

/**
 * The update's plan from the deltas alone (docs/SCALE.md, "Planning an update from the
 * deltas"): when DEST applied the previous generation (its data.dsync hashes as the record it
 * applied says), only the paths the deltas name can differ from the new list, so only those
 * (their folders, and the files their hardlinks point to) are looked at in DEST: one lstat
 * each, no walk, no object per repository file. The two lists stay bytes with a line table;
 * an entry is parsed when a path is looked up.
 *
 * What DEST holds at those paths is planned exactly as makePlan plans it (planEntries), so a
 * run killed mid-apply resumes the same way. When DEST is not as the previous list says at a
 * path the plan depends on (another type there, a folder holding a name no delta accounts for,
 * a folder on the way that is not a folder), a reason is returned and the caller walks all of
 * DEST instead (makePlan).
 */
export interface DeltaPlanInput {
  dest: string
  /**
   * DEST's own data.dsync (it applied it), as much of it as the plan needs: its line at each
   * path the deltas name (undefined: no entry there; every other path's line is the new list's)
   * and its entry count. The new list is rebuilt from the deltas, checked against the record.
   */
  before: Map<string, string | undefined>
  previousEntries: number
  /** The new list (on disk: only the lines looked up are read). */
  next: ListLines
  deltas: Delta[]
  /** Names the rebuilt list in errors. */
  file: string
}

/** Number of lines before a data.dsync's first entry line (magic, four header fields, blank). */
const HEADER_LINES = 6

export async function planFromDeltas(input: DeltaPlanInput): Promise<Plan | string> {
  const lists = new Lookup(input)
  const touched = touchedPaths(input.deltas, input.file)
  checkNewList(lists, touched)
  const paths = pathsToLook(lists, touched)
  const local = new Map<string, ScannedEntry>()
  for (const p of paths) {
    const l = localEntry(input.dest, p)
    if (typeof l === 'string') return l
    if (l) local.set(p, l)
  }
  const why = unexpected(input.dest, lists, touched, local)
  if (why) return why
  const sha = await hashesFor(input.dest, local, p => fileEntry(lists.old(p)), p => (lists.next(p)?.type === 'f' ? lists.next(p) : undefined))
  const upstream = paths.map(p => lists.next(p)).filter((u): u is ManifestEntry => u !== undefined)
  upstream.sort((a, b) => Buffer.compare(Buffer.from(a.path, 'utf8'), Buffer.from(b.path, 'utf8')))
  return planEntries({
    dest: input.dest, local, sha, upstream,
    folder: p => (lists.next(p)?.type === 'd' ? lists.next(p) : undefined),
    localEntries: input.previousEntries,
  })
}

/**
 * The paths the deltas name; the folders above them (the apply writes through them and their
 * mtimes must end as upstream's: a kill after a mkdir left the kernel's there); the files new
 * hardlinks share an inode with (the plan needs their inode and content).
 */
function pathsToLook(lists: Lookup, touched: Map<string, true>): string[] {
  const paths = [...touched.keys()]
  const extra = new Set<string>()
  for (const p of touched.keys()) {
    for (let a = parentOf(p); a !== '' && !touched.has(a) && !extra.has(a); a = parentOf(a)) extra.add(a)
    const u = lists.next(p)
    if (u?.type === 'h' && !touched.has(u.target!)) extra.add(u.target!)
  }
  return [...paths, ...extra]
}

/** Entries of both lists by path, parsed on first look-up (a few per changed path). */
class Lookup {
  private readonly cache = new Map<string, { old?: ManifestEntry; next?: ManifestEntry }>()

  constructor(readonly input: DeltaPlanInput) {}

  old(path: string): ManifestEntry | undefined {
    return this.both(path).old
  }

  next(path: string): ManifestEntry | undefined {
    return this.both(path).next
  }

  private both(path: string): { old?: ManifestEntry; next?: ManifestEntry } {
    let hit = this.cache.get(path)
    if (!hit) {
      const key = Buffer.from(path, 'utf8')
      const next = entryIn(this.input.next, key, this.input.file)
      hit = { old: this.input.before.has(path) ? beforeEntry(this.input.before.get(path)) : next, next }
      this.cache.set(path, hit)
    }
    return hit
  }
}

/** DEST's entry from its own line (the list it applied, whose END checksum held). */
function beforeEntry(line: string | undefined): ManifestEntry | undefined {
  if (line === undefined) return undefined
  const e = parseEntryLine(line)
  if (typeof e === 'string') throw new DsyncError(ExitCode.badData, 'manifest.corrupt', { file: 'DEST data.dsync', line: 0, reason: e })
  return e
}

/** The entry at `key` in a list, parsed and checked by the line rules; undefined when the list has no such path. */
function entryIn(t: ListLines, key: Buffer, file: string): ManifestEntry | undefined {
  const i = lowerBoundIn(t, key)
  if (i >= t.count || !keyAt(t, i).equals(key)) return undefined
  return lineEntry(t, i, file)
}

/** The entry at `path` in a list (parsed and checked by the line rules), or undefined. */
export function listEntry(t: ListLines, path: string, file: string): ManifestEntry | undefined {
  return entryIn(t, Buffer.from(path, 'utf8'), file)
}

function lineEntry(t: ListLines, i: number, file: string): ManifestEntry {
  const line = t.line(i)
  const e = parseEntryLine(line.toString('utf8', 0, line.length - 1))
  if (typeof e === 'string') throw corrupt(file, i, e)
  return e
}

function corrupt(file: string, i: number, reason: string): DsyncError {
  return new DsyncError(ExitCode.badData, 'manifest.corrupt', { file, line: i + HEADER_LINES + 1, reason })
}

/** Every path a delta of the chain adds, changes or removes. Removed paths must be safe too: DEST's entry there is deleted. */
function touchedPaths(deltas: Delta[], file: string): Map<string, true> {
  const out = new Map<string, true>()
  for (const d of deltas) {
    for (const line of d.lines) {
      const f = line.split('\t')
      const raw = f[0] === '-' ? f[1] : f[5]
      const path = raw === undefined ? undefined : unescapePath(raw)
      if (path === undefined || !isSafeRelativePath(path) || path === DSYNC_DIR || path.startsWith(DSYNC_DIR + '/')) {
        throw new DsyncError(ExitCode.badData, 'manifest.corrupt', { file, line: 0, reason: `delta ${d.seq}: unsafe or malformed path "${(raw ?? line).slice(0, 80)}"` })
      }
      out.set(path, true)
    }
  }
  return out
}

/**
 * The rules of the whole list (ManifestParser's) that the deltas could break, checked where
 * they could break them: each new or changed entry's parent is a listed folder, a hardlink
 * names a file listed before it with the same content, a folder that is gone or no longer a
 * folder has nothing left under it, and a hardlink the deltas did not touch still matches the
 * file it names. Every other line is DEST's previous list's, which held them.
 */
function checkNewList(lists: Lookup, touched: Map<string, true>): void {
  const input = lists.input
  const next = input.next
  function fail(path: string, reason: string): never {
    throw corrupt(input.file, lowerBoundIn(next, Buffer.from(path, 'utf8')), reason)
  }
  const pieceLength = headerValue(next, 'piece-length')
  if (pieceLength < 16384 || (pieceLength & (pieceLength - 1)) !== 0) throw corrupt(input.file, -HEADER_LINES + 1, 'piece length must be a power of two >= 16384')
  for (const p of touched.keys()) {
    const u = lists.next(p)
    const o = lists.old(p)
    if (u && parentOf(p) !== '' && lists.next(parentOf(p))?.type !== 'd') fail(p, 'parent folder is not listed as a directory')
    if (u?.type === 'h') {
      const file = lists.next(u.target!)
      if (file?.type !== 'f' || Buffer.compare(Buffer.from(u.target!, 'utf8'), Buffer.from(p, 'utf8')) >= 0) fail(p, 'hardlink to a file not listed before it')
      if (file.size !== u.size || !file.sha256!.equals(u.sha256!)) fail(p, 'hardlink differs from its file in size or SHA-256')
    }
    if (o?.type === 'd' && u?.type !== 'd') {
      const below = Buffer.from(p + '/', 'utf8')
      const i = lowerBoundIn(next, below)
      if (i < next.count && keyAt(next, i).subarray(0, below.length).equals(below)) throw corrupt(input.file, i, 'parent folder is not listed as a directory')
    }
  }
  for (const i of next.hardlinks()) {
    const h = lineEntry(next, i, input.file)
    if (!touched.has(h.target!)) continue
    const file = lists.next(h.target!)
    if (file?.type !== 'f') throw corrupt(input.file, i, 'hardlink to a file not listed before it')
    if (file.size !== h.size || !file.sha256!.equals(h.sha256!)) throw corrupt(input.file, i, 'hardlink differs from its file in size or SHA-256')
  }
}

/** DEST's entry at a path (one lstat), undefined when there is none; a reason when it is of a kind no list holds. */
function localEntry(dest: string, path: string): ScannedEntry | undefined | string {
  const abs = join(dest, path)
  let st
  try {
    st = lstatSync(abs)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined
    return `${path}: ${(err as Error).message}`
  }
  const e = fromStats(path, st)
  if (!e) return `${path} is a special file in DEST`
  if (e.type === 'l') readLinkTarget(e, abs)
  return e
}

/**
 * A reason to walk DEST after all: at a path the deltas name it holds a kind of entry neither
 * list has there (edited by hand, or another tool wrote it), or a folder the update removes or
 * replaces holds a name that no delta removes (the walk would delete it; this plan cannot see it).
 */
function unexpected(dest: string, lists: Lookup, touched: Map<string, true>, local: Map<string, ScannedEntry>): string | undefined {
  for (const [path, l] of local) {
    const kinds = [lists.old(path), lists.next(path)].filter(e => e !== undefined).map(e => fileOr(e.type))
    if (!kinds.includes(fileOr(l.type))) return `${path} is a${l.type === 'd' ? ' folder' : l.type === 'l' ? ' symlink' : ' file'} in DEST, which the previous list does not say`
    if (l.type !== 'd' || lists.next(path)?.type === 'd') continue
    let names: string[]
    try {
      names = readdirSync(join(dest, path))
    } catch (err) {
      return `${path}: ${(err as Error).message}`
    }
    for (const name of names) {
      const child = `${path}/${name}`
      if (!touched.has(child) || lists.next(child)) return `${child} is in DEST but in no delta`
    }
  }
  return undefined
}

function fileEntry(e: ManifestEntry | undefined): ManifestEntry | undefined {
  return e && (e.type === 'f' || e.type === 'h') ? e : undefined
}
