import { statfsSync } from 'node:fs'
import { DsyncError, ExitCode } from '../errors.js'
import { formatBytes } from '../ui/units.js'

/** Kept free on top of what a pull needs: metadata, directories, the commit record. */
const MARGIN = 1 << 20
/** Below this much free space after a failed fetch, staged data goes: the live tree needs the room. */
const RESERVE_MIN = 64 << 20

function space(path: string): { free: number; total: number } {
  const s = statfsSync(path)
  return { free: s.bavail * s.bsize, total: s.blocks * s.bsize }
}

/** Refuses, before anything is fetched, a pull that cannot fit on DEST's filesystem. */
export function checkFreeSpace(dir: string, dest: string, need: number): void {
  const { free } = space(dir)
  if (need + MARGIN > free) {
    throw new DsyncError(ExitCode.io, 'hardening.noSpace', { dest, need: formatBytes(need), free: formatBytes(free) })
  }
}

/**
 * After a fetch failed: true when the filesystem is (nearly) full, so that staged data must
 * make room for the live tree rather than wait for a resume (a full disk left 100% used by
 * staging). One percent of the filesystem, at least 64 MiB.
 */
export function spaceIsLow(dir: string): boolean {
  try {
    const { free, total } = space(dir)
    return free < Math.min(total / 10, Math.max(RESERVE_MIN, total / 100))
  } catch {
    return false
  }
}
