import { readFileSync } from 'node:fs'

/**
 * Pid files and lock files hold "PID STARTTIME": the pid and the kernel's start time of that
 * process (clock ticks since boot, /proc/PID/stat field 22). A pid alone is not an identity:
 * after a crash and a reboot, or a long uptime, the pid in a stale file can belong to an
 * unrelated process, and `-emoff` or `stop-service` would signal it. Where /proc is missing
 * (not Linux) the start time is left out and the pid check alone decides, as before.
 */
export interface ProcessId {
  pid: number
  start?: string
}

/** The start time of a live process, or undefined (no such process, or no /proc). */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) is in parentheses and may hold spaces: count after its end.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return fields[19]
  } catch {
    return undefined
  }
}

/** This process's line for a pid or lock file. */
export function ownPidLine(): string {
  const start = processStartTime(process.pid)
  return start === undefined ? `${process.pid}\n` : `${process.pid} ${start}\n`
}

/** The process named in a pid or lock file; undefined when missing or not a pid. */
export function readProcessId(file: string): ProcessId | undefined {
  try {
    const [pidText, start] = readFileSync(file, 'utf8').trim().split(/\s+/)
    const pid = Number(pidText)
    if (!Number.isInteger(pid) || pid <= 0) return undefined
    return start !== undefined && /^\d+$/.test(start) ? { pid, start } : { pid }
  } catch {
    return undefined
  }
}

/** The pid written in a pid or lock file; undefined when missing or not a pid. */
export function readPid(file: string): number | undefined {
  return readProcessId(file)?.pid
}

/** True while a process with this pid exists (EPERM: it exists, owned by someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** True while the very process named by `id` runs: its pid exists with the same start time. */
export function sameProcessAlive(id: ProcessId): boolean {
  if (!processAlive(id.pid)) return false
  if (id.start === undefined) return true
  const now = processStartTime(id.pid)
  return now === undefined || now === id.start
}

/** The live process named in a pid or lock file (a stale or reused pid reads as none). */
export function liveOwner(file: string): ProcessId | undefined {
  const id = readProcessId(file)
  return id !== undefined && sameProcessAlive(id) ? id : undefined
}
