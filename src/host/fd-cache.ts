import type { FileHandle } from 'node:fs/promises'
import { mismatch, openRepoFile, StaleFileError, type Expected } from './repo-file.js'

export { StaleFileError }

interface Slot {
  handle: Promise<FileHandle>
  users: number
  closing: boolean
  /** What the caller expected when it was opened (a new generation may expect other values). */
  want: Expected
  checkedAt: number
}

/**
 * An open file is checked again after this long: rsync --inplace (or any writer that keeps
 * the inode) changes bytes under an open handle, while rsync's default temp+rename leaves
 * the open handle on the old, still correct, inode.
 */
const RECHECK_MS = 250

/**
 * A bounded set of open files, least recently used closed first, so a 200k-file repository
 * seeds under any `ulimit -n`. Each file is opened without following links and checked against
 * the size and mtime that data.dsync records (and the inode gendsync hashed): gendsync hashed
 * that version, so any other one must not be served.
 */
export class FdCache {
  private readonly slots = new Map<string, Slot>()
  /** Files opened since start: evidence in the log that serving reads only what is asked. */
  opened = 0

  /** Reads in flight; each may hold a handle already evicted from the cache. */
  private active = 0
  private readonly waiting: (() => void)[] = []
  private readonly maxActive: number

  /**
   * At most `limit` idle handles stay cached and at most limit/4 reads run at once, so the
   * process never holds more than 1.25 x limit descriptors for files, whatever peers ask.
   */
  constructor(private readonly limit = 128) {
    this.maxActive = Math.max(1, Math.floor(limit / 4))
  }

  get openCount(): number {
    return this.slots.size
  }

  /** Runs `fn` with an open handle to `path`; the handle stays cached for the next caller. */
  async with<T>(path: string, want: Expected, fn: (fh: FileHandle) => Promise<T>): Promise<T> {
    // A finishing read hands its permit straight to the next waiter, so none slips past.
    if (this.active >= this.maxActive) await new Promise<void>(resolve => this.waiting.push(resolve))
    else this.active++
    try {
      return await this.withSlot(path, want, fn)
    } finally {
      const next = this.waiting.shift()
      if (next) next()
      else this.active--
    }
  }

  private async withSlot<T>(path: string, want: Expected, fn: (fh: FileHandle) => Promise<T>): Promise<T> {
    let slot = this.slots.get(path)
    if (slot && (slot.want.size !== want.size || slot.want.mtime !== want.mtime || slot.want.ino !== want.ino)) {
      this.drop(path, slot)
      slot = undefined
    }
    if (slot) {
      // Map order is insertion order: re-inserting marks it most recently used.
      this.slots.delete(path)
      this.slots.set(path, slot)
    } else {
      this.opened++
      slot = { handle: openChecked(path, want), users: 0, closing: false, want, checkedAt: Date.now() }
      this.slots.set(path, slot)
      slot.handle.catch(() => this.slots.get(path) === slot && this.slots.delete(path))
      this.evict()
    }
    slot.users++
    try {
      const fh = await slot.handle
      if (Date.now() - slot.checkedAt > RECHECK_MS) {
        slot.checkedAt = Date.now()
        const problem = mismatch(await fh.stat(), want)
        if (problem) {
          this.drop(path, slot)
          throw new StaleFileError(path, problem)
        }
      }
      return await fn(fh)
    } finally {
      slot.users--
      if (slot.closing && slot.users === 0) void closeQuietly(slot.handle)
    }
  }

  private drop(path: string, slot: Slot): void {
    if (this.slots.get(path) === slot) this.slots.delete(path)
    slot.closing = true
    if (slot.users === 0) void closeQuietly(slot.handle)
  }

  private evict(): void {
    for (const [path, slot] of this.slots) {
      if (this.slots.size <= this.limit) break
      this.slots.delete(path)
      slot.closing = true
      if (slot.users === 0) void closeQuietly(slot.handle)
    }
  }

  async closeAll(): Promise<void> {
    const all = [...this.slots.values()]
    this.slots.clear()
    await Promise.all(all.map(s => closeQuietly(s.handle)))
  }
}

async function openChecked(path: string, want: Expected): Promise<FileHandle> {
  const fh = await openRepoFile(path, want.root)
  const problem = mismatch(await fh.stat(), want)
  if (problem) {
    await closeQuietly(Promise.resolve(fh))
    throw new StaleFileError(path, problem)
  }
  return fh
}

async function closeQuietly(handle: Promise<FileHandle>): Promise<void> {
  try {
    await (await handle).close()
  } catch {
    // already closed or failed to open: nothing to release
  }
}
