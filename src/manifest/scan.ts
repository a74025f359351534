import { lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { DsyncError, ExitCode, fsError } from '../errors.js'
import { t } from '../i18n/index.js'
import { sortEntries, type EntryType } from './entry.js'
import { FIELDS, KIND, walkOne, type WalkedDir, type WalkRequest } from './walk-dir.js'

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
          readLinkTarget(entry, abs)
        } catch (err) {
          throw fsError(err, abs, 'read')
        }
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

export interface ParallelScanOptions extends ScanOptions {
  threads?: number
  /**
   * Threads that answer walk requests (hash-worker.ts), started on the first call when the walk
   * needs them; the caller owns them (a full gendsync hashes on them next). Without it the walk
   * starts walk-worker.ts threads of its own and ends them.
   */
  workers?: () => Worker[]
  /** What the workers put before a path (publish/repo-cwd.ts: '' when the working directory is `root`); default `root` + '/'. */
  workerBase?: string
}

/** Folders the main thread lists itself before starting the walk's workers (a small tree never needs them). */
const SYNC_ENTRIES = 5000
/** Folders per message to a walk worker, at most. */
const WALK_BATCH = 32

/**
 * scanTree with the folders listed and lstat'ed on worker threads (walk-worker.ts): the same
 * entries, warnings and errors, in data.dsync order. A tree of a few thousand entries is
 * walked here without starting a worker.
 */
export async function scanTreeParallel(root: string, opts: ParallelScanOptions = {}): Promise<ScannedEntry[]> {
  const rootStat = statOrThrow(root)
  if (!rootStat.isDirectory()) throw new DsyncError(ExitCode.io, 'scan.notDirectory', { path: root })
  const walk = new WalkState(root, join(root, '/'), opts)
  while (walk.queue.length > 0 && walk.out.length < SYNC_ENTRIES) walk.add(walkOne(walk.base, walk.queue.pop()!))
  if (walk.queue.length > 0) {
    const threads = Math.max(1, Math.min(opts.threads ?? availableParallelism(), 8))
    const borrowed = opts.workers?.()
    await walkOnWorkers(walk, borrowed ?? Array.from({ length: threads }, () => new Worker(new URL('./walk-worker.js', import.meta.url))), borrowed === undefined)
  }
  opts.onEntry?.(walk.out.length)
  return groupHardlinks(sortEntries(walk.out))
}

class WalkState {
  readonly out: ScannedEntry[] = []
  readonly queue: string[] = ['']
  /** The workers' prefix for a path (messages always use `base`). */
  readonly workerBase: string
  private readonly exclude: Set<string>

  constructor(private readonly root: string, readonly base: string, private readonly opts: ParallelScanOptions) {
    this.exclude = new Set(opts.excludeTop ?? [])
    this.workerBase = opts.workerBase ?? base
  }

  /** One listed folder's entries, checked as scanTree checks them. */
  add(d: WalkedDir): void {
    const dirAbs = d.rel === '' ? this.root : this.base + d.rel
    if (d.error) throw fsError(errno(d.error), dirAbs, 'read')
    if (d.statError) throw fsError(errno(d.statError.code), this.base + (d.rel === '' ? '' : d.rel + '/') + d.statError.name, 'stat')
    for (let i = 0; i < d.names.length; i++) {
      const name = d.names[i]
      if (d.rel === '' && this.exclude.has(name)) continue
      const path = d.rel === '' ? name : d.rel + '/' + name
      if (name.includes('\uFFFD') && !Buffer.from(name).equals(Buffer.from(name, 'utf8'))) {
        this.opts.onWarning?.(t('scan.badName', { path: this.base + path }))
        continue
      }
      const f = i * FIELDS
      const kind = d.stats[f]
      if (kind === KIND.vanished) {
        this.opts.onWarning?.(t('scan.vanished', { path: this.base + path }))
        continue
      }
      if (kind === KIND.special) {
        this.opts.onWarning?.(t('scan.special', { path: this.base + path }))
        continue
      }
      const type: EntryType = kind === KIND.file ? 'f' : kind === KIND.dir ? 'd' : 'l'
      const entry: ScannedEntry = {
        type, path, mode: type === 'l' ? 0o777 : d.stats[f + 1], size: type === 'f' ? d.stats[f + 2] : 0,
        mtime: Math.floor(d.stats[f + 3] / 1000), mtimeMs: d.stats[f + 3], ctimeMs: d.stats[f + 4],
        ino: d.stats[f + 5], dev: d.stats[f + 6], nlink: d.stats[f + 7],
      }
      if (type === 'l') {
        const target = d.targets?.[i]
        if (typeof target !== 'string') throw fsError(errno(target?.error ?? 'EIO'), this.base + path, 'read')
        entry.target = target
        entry.size = Buffer.byteLength(target)
      } else if (type === 'd') {
        this.queue.push(path)
      }
      this.out.push(entry)
      if (this.opts.onEntry && this.out.length % 1000 === 0) this.opts.onEntry(this.out.length)
    }
  }
}

function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(code), { code })
}

type WorkerListener = Parameters<Worker['on']>[1]

/**
 * The rest of the walk on worker threads: each takes up to WALK_BATCH folders, two messages in
 * flight. `own`: the walk started them and ends them; else it only takes its listeners off.
 */
async function walkOnWorkers(walk: WalkState, workers: Worker[], own: boolean): Promise<void> {
  const threads = workers.length
  const inflight = workers.map(() => 0)
  const listeners: [Worker, 'message' | 'error' | 'exit', WorkerListener][] = []
  const listen = (w: Worker, event: 'message' | 'error' | 'exit', fn: WorkerListener) => {
    w.on(event, fn)
    listeners.push([w, event, fn])
  }
  try {
    await new Promise<void>((resolve, reject) => {
      const feedAll = () => {
        workers.forEach((w, i) => {
          while (inflight[i] < 2 && walk.queue.length > 0) {
            const n = Math.min(WALK_BATCH, Math.ceil(walk.queue.length / threads))
            inflight[i]++
            w.postMessage({ root: walk.workerBase, dirs: walk.queue.splice(walk.queue.length - n, n) } satisfies WalkRequest)
          }
        })
        if (walk.queue.length === 0 && inflight.every(n => n === 0)) resolve()
      }
      workers.forEach((w, i) => {
        listen(w, 'message', (dirs: WalkedDir[]) => {
          inflight[i]--
          try {
            for (const d of dirs) walk.add(d)
          } catch (err) {
            return reject(err)
          }
          feedAll()
        })
        listen(w, 'error', reject)
        listen(w, 'exit', (code: number) => { if (code !== 0) reject(new Error(`walk worker exited with code ${code}`)) })
      })
      feedAll()
    })
  } finally {
    for (const [w, event, fn] of listeners) w.off(event, fn)
    if (own) await Promise.all(workers.map(w => w.terminate()))
  }
}

/** A symlink's entry takes its target, and as its size the target's length in bytes (as data.dsync lists it). */
export function readLinkTarget(entry: ScannedEntry, abs: string): void {
  entry.target = readlinkSync(abs)
  entry.size = Buffer.byteLength(entry.target)
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
