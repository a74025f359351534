import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

/** The tunable src/util/huge-pages.ts sets. */
export const TUNABLE = 'glibc.malloc.hugetlb'

/** Kilobytes of anonymous huge pages the kernel counts for a process (/proc/PID/smaps_rollup); 0 once it is gone. */
export function hugeKiB(pid: number): number {
  try {
    return Number(/AnonHugePages:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0)
  } catch {
    return 0
  }
}

/** A plain node process's huge pages after an 8 MB buffer, started with `env`. */
function controlKiB(env: NodeJS.ProcessEnv): number {
  const script = `Buffer.alloc(8e6, 1); process.stdout.write(require('fs').readFileSync('/proc/self/smaps_rollup', 'utf8'))`
  const r = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8' })
  return Number(/AnonHugePages:\s+(\d+) kB/.exec(r.stdout)?.[1] ?? 0)
}

/**
 * Why the tunable cannot be seen to work on this machine, or undefined when it can: THP must
 * be "madvise" (off, nothing to see; "always", every process gets them), and a plain node
 * process must get huge pages with the tunable and none without (glibc 2.35+).
 */
export function hugePagesUntestable(): string | undefined {
  let mode = ''
  try {
    mode = /\[(\w+)\]/.exec(readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))?.[1] ?? ''
  } catch {
    return 'no transparent huge pages on this kernel'
  }
  if (mode !== 'madvise') return `transparent huge pages are "${mode}" here, not "madvise": the tunable makes no difference to see`
  const { GLIBC_TUNABLES: _, ...plain } = process.env
  if (controlKiB({ ...plain, GLIBC_TUNABLES: `${TUNABLE}=1` }) === 0) return `this libc or kernel gives no huge pages for ${TUNABLE}=1 (glibc 2.35+ needed)`
  if (controlKiB(plain) !== 0) return 'a process without the tunable got huge pages too'
  return undefined
}

/** The pids of a process's children (Linux 3.5+: /proc/PID/task/PID/children). */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

/** True while `pid` is a process that has not ended (a zombie has ended). */
export function running(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))
  } catch {
    return false
  }
}

/**
 * A process's environment as it was started (/proc/PID/environ). glibc's tunables parser cuts
 * GLIBC_TUNABLES there at its first ':' in place: only the first tunable of a list shows.
 */
export function environOf(pid: number): Record<string, string> {
  const vars = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(v => v.includes('='))
  return Object.fromEntries(vars.map(v => [v.slice(0, v.indexOf('=')), v.slice(v.indexOf('=') + 1)]))
}
