import { closeSync, constants, openSync } from 'node:fs'

/**
 * At most this many `.part` files open at once: a pull of 200k files must not hit EMFILE, and a
 * file's pieces mostly arrive close together.
 */
const MAX_OPEN = 64

/**
 * Open descriptors of `.part` files, least recently used closed first. The main thread's
 * staging (resume checks, reads) and the stage worker's writer each keep one.
 */
export class PartFds {
  /** hex -> fd; Map order is the LRU order. */
  private readonly fds = new Map<string, number>()

  constructor(private readonly pathOf: (hex: string) => string) {}

  /** The descriptor of `hex`'s part, opened (created if missing) read-write; throws as openSync does. */
  get(hex: string): number {
    let fd = this.fds.get(hex)
    if (fd !== undefined) {
      this.fds.delete(hex)
      this.fds.set(hex, fd)
      return fd
    }
    if (this.fds.size >= MAX_OPEN) this.close(this.fds.keys().next().value as string)
    // Read-write, created if missing, never truncated: one call (an existsSync before it was
    // 177 ms of a stage worker's 4.4 s busy in a loaded 20,000-file pull: a lookup of a name
    // not there yet, in a folder of thousands).
    fd = openSync(this.pathOf(hex), constants.O_RDWR | constants.O_CREAT, 0o644)
    this.fds.set(hex, fd)
    return fd
  }

  close(hex: string): void {
    const fd = this.fds.get(hex)
    if (fd === undefined) return
    this.fds.delete(hex)
    closeSync(fd)
  }

  closeAll(): void {
    for (const hex of [...this.fds.keys()]) this.close(hex)
  }
}
