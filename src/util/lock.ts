import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs'
import { DsyncError, ExitCode, fsError } from '../errors.js'
import { processAlive, readPid } from './process.js'

export interface Lock {
  path: string
  release(): void
}

/**
 * A lock file holding the owner's pid, created with O_EXCL. A lock whose process is gone
 * (killed, machine rebooted) is stale and taken over, so a crash never blocks the next run.
 */
export function acquireLock(path: string): Lock {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o644)
      writeSync(fd, `${process.pid}\n`)
      closeSync(fd)
      return {
        path,
        release() {
          try {
            if (readPid(path) === process.pid) unlinkSync(path)
          } catch {
            // already gone: nothing to release
          }
        },
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fsError(err, path, 'write')
    }
    const owner = readPid(path)
    if (owner !== undefined && owner !== process.pid && processAlive(owner)) {
      throw new DsyncError(ExitCode.locked, 'lock.held', { path, pid: owner })
    }
    try {
      unlinkSync(path) // stale: its process is gone (or the file is unreadable garbage)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(err, path, 'write')
    }
  }
  throw new DsyncError(ExitCode.locked, 'lock.held', { path, pid: readPid(path) ?? '?' })
}

/** The live process holding the lock at `path`, if any (for skips and emergency stops). */
export function lockHolder(path: string): number | undefined {
  const owner = readPid(path)
  return owner !== undefined && processAlive(owner) ? owner : undefined
}
