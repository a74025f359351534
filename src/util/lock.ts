import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs'
import { DsyncError, ExitCode, fsError } from '../errors.js'
import { liveOwner, ownPidLine, readPid } from './process.js'

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
      writeSync(fd, ownPidLine())
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
    const owner = liveOwner(path)?.pid
    if (owner !== undefined && owner !== process.pid) {
      throw new DsyncError(ExitCode.locked, 'lock.held', { path, pid: owner })
    }
    try {
      unlinkSync(path) // stale: its process is gone, its pid reused, or the file is garbage
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(err, path, 'write')
    }
  }
  throw new DsyncError(ExitCode.locked, 'lock.held', { path, pid: readPid(path) ?? '?' })
}

/** The live process holding the lock at `path`, if any (for skips and emergency stops). */
export function lockHolder(path: string): number | undefined {
  return liveOwner(path)?.pid
}
