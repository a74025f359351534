import { lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs'
import { join } from 'node:path'
import { DsyncError, ExitCode, fsError } from '../errors.js'
import { t } from '../i18n/index.js'
import { sortEntries, type EntryType } from './entry.js'

/** What a walk of the tree learns from lstat alone, before any content is read. */
export interface ScannedEntry {
  type: EntryType
  path: string
  mode: number
  size: number
  mtime: number
  mtimeMs: number
  /** Status change time: no tool can set it, so a rewrite that restores size and mtime still shows. */
  ctimeMs: number
  ino: number
  dev: number
  nlink: number
  target?: string
}

export interface ScanOptions {
  /** Top-level names left out (the `.dsync` folder holding the manifest itself). */
  excludeTop?: string[]
  onEntry?: (count: number) => void
  onWarning?: (message: string) => void
}

/**
 * Walks `root` without following symlinks and returns every entry sorted in data.dsync
 * order. Files sharing an inode become one 'f' (the first path in that order) and 'h'
 * entries pointing at it, so hardlinked trees survive a round trip.
 */
export function scanTree(root: string, opts: ScanOptions = {}): ScannedEntry[] {
  const rootStat = statOrThrow(root)
  if (!rootStat.isDirectory()) throw new DsyncError(ExitCode.io, 'scan.notDirectory', { path: root })
  const exclude = new Set(opts.excludeTop ?? [])
  // join() normalises on every call; the root is normalised once and names need none.
  const base = join(root, '/')
  const out: ScannedEntry[] = []
  const stack: string[] = ['']
  while (stack.length > 0) {
    const rel = stack.pop()!
    const dir = rel === '' ? root : base + rel
    let names: string[]
    try {
      names = readdirSync(dir)
    } catch (err) {
      throw fsError(err, dir, 'read')
    }
    for (const name of names) {
      if (rel === '' && exclude.has(name)) continue
      const path = rel === '' ? name : rel + '/' + name
      const abs = base + path
      if (name.includes('\uFFFD') && !Buffer.from(name).equals(Buffer.from(name, 'utf8'))) {
        opts.onWarning?.(t('scan.badName', { path: abs }))
        continue
      }
      // A file removed between readdir and lstat (an rsync still running) is left out.
      const st = statOrVanished(abs)
      if (!st) {
        opts.onWarning?.(t('scan.vanished', { path: abs }))
        continue
      }
      const entry = fromStats(path, st)
      if (!entry) {
        opts.onWarning?.(t('scan.special', { path: abs }))
        continue
      }
      if (entry.type === 'l') {
        try {
          entry.target = readlinkSync(abs)
        } catch (err) {
          throw fsError(err, abs, 'read')
        }
        entry.size = Buffer.byteLength(entry.target)
      } else if (entry.type === 'd') {
        stack.push(path)
      }
      out.push(entry)
      if (opts.onEntry && out.length % 1000 === 0) opts.onEntry(out.length)
    }
  }
  opts.onEntry?.(out.length)
  return groupHardlinks(sortEntries(out))
}

export function fromStats(path: string, st: Stats): ScannedEntry | undefined {
  let type: EntryType
  if (st.isFile()) type = 'f'
  else if (st.isDirectory()) type = 'd'
  else if (st.isSymbolicLink()) type = 'l'
  else return undefined
  return {
    type,
    path,
    mode: type === 'l' ? 0o777 : st.mode & 0o7777,
    size: type === 'f' ? st.size : 0,
    mtime: Math.floor(st.mtimeMs / 1000),
    mtimeMs: st.mtimeMs,
    ctimeMs: st.ctimeMs,
    ino: st.ino,
    dev: st.dev,
    nlink: st.nlink,
  }
}

function groupHardlinks(sorted: ScannedEntry[]): ScannedEntry[] {
  const first = new Map<string, ScannedEntry>()
  for (const e of sorted) {
    if (e.type !== 'f' || e.nlink < 2) continue
    const key = `${e.dev}:${e.ino}`
    const canonical = first.get(key)
    if (!canonical) {
      first.set(key, e)
    } else {
      e.type = 'h'
      e.target = canonical.path
    }
  }
  return sorted
}

function statOrVanished(path: string): Stats | undefined {
  try {
    return lstatSync(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw fsError(err, path, 'stat')
  }
}

function statOrThrow(path: string): Stats {
  try {
    return lstatSync(path)
  } catch (err) {
    throw fsError(err, path, 'stat')
  }
}
