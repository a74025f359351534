import { closeSync, constants, fsync, openSync, renameSync, unlinkSync } from 'node:fs'
import { fsError } from '../errors.js'
import { tmpName, writeAll } from './atomic-write.js'

interface Staged {
  path: string
  tmp: string
  fd: number | undefined
  done: Promise<void>
  failed?: unknown
}

/**
 * Several files replaced atomically, in a given order, with the crash guarantees of one
 * writeFileAtomic after another (each file complete and fsync'ed before it is renamed into
 * place, the renames in the order the files were added) but without waiting for each fsync
 * in turn: every file is written and fsync'ed on libuv's threads as soon as it is added,
 * while the caller goes on, and commit() renames them all once every one is on disk.
 * gendsync's outputs (data.dsync, shard torrents, index, magnet, delta, record) go through
 * one batch: ~20 fsyncs at 200k files that took turns (docs/SCALE.md, "gendsync at 200,000 files").
 * Nothing is renamed when any write fails; the temporary files are removed.
 *
 * The temporary files are opened with O_SYNC: each write returns only once its data and the
 * metadata needed to read it back are on disk (POSIX "synchronized I/O file integrity
 * completion", what fsync gives), inside the same job on libuv's thread. A write followed by
 * a separate fsync needed the event loop between the two, and gendsync's main thread, busy
 * building the next shard, gave it no turn until the end: every fsync of a hinted run started
 * at the commit (strace: data.dsync written 0.5 s before its fsync began, ~150 ms of fsyncs
 * after the last output). A file with no bytes is fsync'ed, as no write syncs it.
 */
export class DurableBatch {
  private readonly staged: Staged[] = []
  private readonly afterCommit: (() => void | Promise<void>)[] = []
  private closed = false

  /** Starts writing `data` beside `path` (a temporary file); it replaces `path` at commit(). */
  add(path: string, data: Buffer | string, mode = 0o644): void {
    if (this.closed) throw new Error('DurableBatch: add after commit or abort')
    const tmp = tmpName(path)
    let fd: number
    try {
      fd = openSync(tmp, SYNC_WRITE, mode)
    } catch (err) {
      throw fsError(err, path, 'write')
    }
    const s: Staged = { path, tmp, fd, done: Promise.resolve() }
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
    s.done = writeAndSync(fd, buf).catch(err => {
      s.failed = err
    })
    this.staged.push(s)
  }

  /** How many files are staged: a point to go back to with dropFrom(). */
  get size(): number {
    return this.staged.length
  }

  /**
   * Forgets the files staged since `mark` (their writes awaited, temporaries removed): a hinted
   * gendsync stages its outputs as each is made, and falls back to a full run that stages its own.
   */
  async dropFrom(mark: number): Promise<void> {
    const dropped = this.staged.splice(mark)
    await Promise.all(dropped.map(s => s.done))
    for (const s of dropped) {
      try {
        if (s.fd !== undefined) closeSync(s.fd)
      } catch {
        // dropped: its file goes below whatever closing it said
      }
      s.fd = undefined
    }
    removeAll(dropped)
  }

  /** Runs `fn` after the renames (removing files the new ones no longer name); commit() waits for it. */
  then(fn: () => void | Promise<void>): void {
    this.afterCommit.push(fn)
  }

  /** Waits for every write and fsync, then renames the files into place in the order added. */
  async commit(): Promise<void> {
    this.closed = true
    await this.settle()
    const bad = this.staged.find(s => s.failed !== undefined)
    if (bad) {
      this.removeTemporaries(0)
      throw fsError(bad.failed, bad.path, 'write')
    }
    for (let i = 0; i < this.staged.length; i++) {
      const s = this.staged[i]
      try {
        renameSync(s.tmp, s.path)
      } catch (err) {
        this.removeTemporaries(i)
        throw fsError(err, s.path, 'write')
      }
    }
    await Promise.all(this.afterCommit.map(fn => fn()))
  }

  /** Drops the batch (after an error elsewhere): nothing is renamed, the temporary files go. */
  async abort(): Promise<void> {
    this.closed = true
    await this.settle()
    this.removeTemporaries(0)
  }

  private async settle(): Promise<void> {
    await Promise.all(this.staged.map(s => s.done))
    for (const s of this.staged) {
      if (s.fd === undefined) continue
      try {
        closeSync(s.fd)
      } catch (err) {
        s.failed ??= err
      }
      s.fd = undefined
    }
  }

  private removeTemporaries(from: number): void {
    removeAll(this.staged.slice(from))
  }
}

function removeAll(staged: Staged[]): void {
  for (const s of staged) {
    try {
      unlinkSync(s.tmp)
    } catch {
      // already gone; the error being reported is the one that matters
    }
  }
}

/** 'w' (create, truncate) with every write synchronized as by fsync. */
const SYNC_WRITE = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_SYNC

async function writeAndSync(fd: number, data: Buffer): Promise<void> {
  // O_SYNC: each write is on disk when it returns; only an empty file needs its own fsync.
  if (data.length > 0) await writeAll(fd, data)
  else await new Promise<void>((resolve, reject) => fsync(fd, err => (err ? reject(err) : resolve())))
}
