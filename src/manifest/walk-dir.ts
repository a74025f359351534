import { lstatSync, readdirSync, readlinkSync } from 'node:fs'
import type { MessagePort } from 'node:worker_threads'

/**
 * One folder of the parallel walk (scan.ts; walk-worker.ts runs it on a worker thread): its
 * names and what lstat says of each, as numbers, not Stats objects. Per name, FIELDS numbers:
 * kind (KIND below), mode bits, size, mtimeMs, ctimeMs, ino, dev, nlink. Errors travel back as
 * codes; the main thread turns them into the messages the one-thread walk gives.
 */
export const FIELDS = 8
export const KIND = { vanished: 0, file: 1, dir: 2, link: 3, special: 4 } as const

export interface WalkRequest {
  /** The repository's path with a trailing slash, or '' for paths relative to the working directory (publish/repo-cwd.ts; the top folder, rel '', is always listed by the main thread). */
  root: string
  dirs: string[]
}

export interface WalkedDir {
  rel: string
  /** readdir failed: its error code (the folder is then reported unreadable). */
  error?: string
  names: string[]
  stats: Float64Array
  /** A symlink's target, or `{error}` when it could not be read; undefined when the folder has no symlink. */
  targets?: (string | { error: string } | undefined)[]
  /** lstat failed with something other than ENOENT: name and code. */
  statError?: { name: string; code: string }
}

export function walkOne(root: string, rel: string): WalkedDir {
  const dir = rel === '' ? root : root + rel
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch (err) {
    return { rel, error: code(err), names: [], stats: new Float64Array(0) }
  }
  const stats = new Float64Array(names.length * FIELDS)
  let targets: WalkedDir['targets']
  const prefix = dir.endsWith('/') ? dir : dir + '/'
  for (let i = 0; i < names.length; i++) {
    let st
    try {
      st = lstatSync(prefix + names[i], { throwIfNoEntry: false })
    } catch (err) {
      return { rel, names, stats, targets, statError: { name: names[i], code: code(err) } }
    }
    if (!st) continue // kind stays 0: vanished
    const kind = st.isFile() ? KIND.file : st.isDirectory() ? KIND.dir : st.isSymbolicLink() ? KIND.link : KIND.special
    const f = i * FIELDS
    stats[f] = kind
    stats[f + 1] = st.mode & 0o7777
    stats[f + 2] = st.size
    stats[f + 3] = st.mtimeMs
    stats[f + 4] = st.ctimeMs
    stats[f + 5] = st.ino
    stats[f + 6] = st.dev
    stats[f + 7] = st.nlink
    if (kind === KIND.link) {
      targets ??= []
      try {
        targets[i] = readlinkSync(prefix + names[i])
      } catch (err) {
        targets[i] = { error: code(err) }
      }
    }
  }
  return { rel, names, stats, targets }
}

/** A worker's answer to a walk request (walk-worker.ts, hash-worker.ts): the folders listed, their numbers' buffers moved, not copied. */
export function answerWalk(port: MessagePort, req: WalkRequest): void {
  const out: WalkedDir[] = req.dirs.map(rel => walkOne(req.root, rel))
  port.postMessage(out, out.map(d => d.stats.buffer as ArrayBuffer))
}

function code(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message
}
