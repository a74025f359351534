import { closeSync, fstatSync } from 'node:fs'
import { fstatAsync, mismatch, openChecked, openCheckedSync, readExactly, readExactlySync, StaleFileError, type Expected } from './repo-file.js'

export { StaleFileError }

interface Slot {
  /** The descriptor once opened and checked; undefined while an asynchronous open is under way. */
  fd: number | undefined
  /** The asynchronous open (undefined for a slot opened synchronously). */
  opening: Promise<number> | undefined
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
 *
 * Two ways in: `with` (asynchronous, through libuv's pool: for a disk that may be cold) and
 * `readSync` (on the event loop, for a warm page cache: no pool hand-off, no promise). Both
 * share the same descriptors, checks and bound.
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
   * process never holds more than 1.25 x limit descriptors for files, whatever peers ask
   * (a synchronous read holds its descriptor only during the call).
   */
  constructor(private readonly limit = 128) {
    this.maxActive = Math.max(1, Math.floor(limit / 4))
  }

  get openCount(): number {
    return this.slots.size
  }

  /** Runs `fn` with an open descriptor of `path`; it stays cached for the next caller. */
  async with<T>(path: string, want: Expected, fn: (fd: number) => Promise<T>): Promise<T> {
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

  /**
   * Reads `length` bytes at `position` of `path` into `out` on the event loop: opens the file
   * (synchronously, with the same checks) when no descriptor is cached. False, with nothing
   * read, while an asynchronous open of it is under way (the caller reads through `with`).
   * Throws StaleFileError as `with` does.
   */
  readSync(path: string, want: Expected, out: Buffer, outOffset: number, length: number, position: number): boolean {
    let slot = this.current(path, want)
    if (slot) {
      if (slot.fd === undefined) return false
      this.touch(path, slot)
      if (Date.now() - slot.checkedAt > RECHECK_MS) {
        slot.checkedAt = Date.now()
        this.failIfChanged(path, slot, mismatch(fstatSync(slot.fd), want))
      }
    } else {
      this.opened++
      slot = this.add(path, want, openCheckedSync(path, want), undefined)
    }
    slot.users++
    try {
      readExactlySync(slot.fd!, path, out, outOffset, length, position)
      return true
    } finally {
      this.release(slot)
    }
  }

  /**
   * Reads `length` bytes at `position` of `path` into `out` through libuv's pool (the
   * asynchronous twin of readSync).
   */
  readAsync(path: string, want: Expected, out: Buffer, outOffset: number, length: number, position: number): Promise<void> {
    return this.with(path, want, fd => readExactly(fd, path, out, outOffset, length, position))
  }

  private async withSlot<T>(path: string, want: Expected, fn: (fd: number) => Promise<T>): Promise<T> {
    let slot = this.current(path, want)
    if (slot) {
      this.touch(path, slot)
    } else {
      this.opened++
      const opening = openChecked(path, want)
      const added = slot = this.add(path, want, undefined, opening)
      opening.then(fd => { added.fd = fd }, () => this.slots.get(path) === added && this.slots.delete(path))
    }
    slot.users++
    try {
      const fd = slot.fd ?? await slot.opening!
      if (Date.now() - slot.checkedAt > RECHECK_MS) {
        slot.checkedAt = Date.now()
        this.failIfChanged(path, slot, mismatch(await fstatAsync(fd), want))
      }
      return await fn(fd)
    } finally {
      this.release(slot)
    }
  }

  /** The cached slot of `path` for these expectations (one opened for others is dropped). */
  private current(path: string, want: Expected): Slot | undefined {
    const slot = this.slots.get(path)
    if (slot && (slot.want.size !== want.size || slot.want.mtime !== want.mtime || slot.want.ino !== want.ino)) {
      this.drop(path, slot)
      return undefined
    }
    return slot
  }

  /** Map order is insertion order: re-inserting marks it most recently used. */
  private touch(path: string, slot: Slot): void {
    this.slots.delete(path)
    this.slots.set(path, slot)
  }

  private add(path: string, want: Expected, fd: number | undefined, opening: Promise<number> | undefined): Slot {
    const slot: Slot = { fd, opening, users: 0, closing: false, want, checkedAt: Date.now() }
    this.slots.set(path, slot)
    this.evict()
    return slot
  }

  private failIfChanged(path: string, slot: Slot, problem: string | undefined): void {
    if (!problem) return
    this.drop(path, slot)
    throw new StaleFileError(path, problem)
  }

  private release(slot: Slot): void {
    slot.users--
    if (slot.closing && slot.users === 0) closeSlot(slot)
  }

  private drop(path: string, slot: Slot): void {
    if (this.slots.get(path) === slot) this.slots.delete(path)
    slot.closing = true
    if (slot.users === 0) closeSlot(slot)
  }

  private evict(): void {
    for (const [path, slot] of this.slots) {
      if (this.slots.size <= this.limit) break
      this.slots.delete(path)
      slot.closing = true
      if (slot.users === 0) closeSlot(slot)
    }
  }

  async closeAll(): Promise<void> {
    const all = [...this.slots.values()]
    this.slots.clear()
    const opening = all.map(s => s.opening?.catch(() => undefined))
    for (const s of all) {
      s.closing = true
      if (s.users === 0) closeSlot(s)
    }
    await Promise.all(opening)
  }
}

/**
 * Closes a slot's descriptor once (on the event loop: close(2) of a regular file is one short
 * system call, cheaper than a trip through the pool); a slot still opening closes when it opens.
 */
function closeSlot(slot: Slot): void {
  const fd = slot.fd
  if (fd !== undefined) {
    slot.fd = undefined
    closeQuietly(fd)
  } else if (slot.opening) {
    void slot.opening.then(n => {
      if (slot.fd === n) slot.fd = undefined
      closeQuietly(n)
    }, () => undefined)
    slot.opening = undefined
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd)
  } catch {
    // already closed: nothing to release
  }
}
