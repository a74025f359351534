import { readFileSync } from 'node:fs'

/**
 * glibc's malloc asked to back its blocks with transparent huge pages
 * (`GLIBC_TUNABLES=glibc.malloc.hugetlb=1`: madvise(MADV_HUGEPAGE) on its heap and its mmap'd
 * blocks; glibc 2.35+), for the processes that read hundreds of MB into fresh memory: the host
 * (`dsync service` and the systemd unit `dsync startup` installs) and `gendsync` (cli/launch.ts).
 *
 * Why: the first touch of a fresh 4 KiB page is slow on virtual machines, ~25 us a page on
 * the project's VM. A 1M-file host reads ~300 MB of metadata at each start (data.dsync 153 MB,
 * the shard torrents 147 MB); a change-hinted gendsync at 200k files reads the previous list
 * and shards and writes new ones (~30 MB each). With 2 MiB pages there are 512 times fewer
 * first touches: the 1M host's start to HTTP 0.47-0.67x, a hinted gendsync 0.77-0.90x with
 * its child's start (docs/ARCHITECTURE.md, "Huge pages: the host and gendsync").
 *
 * Only glibc reads the variable, a kernel with THP set to "never" ignores the advice, and an
 * operator's own value of the tunable wins; other tunables are kept. It must be in the
 * environment when the process starts: glibc reads it once, at exec.
 */
export const HUGE_PAGES_TUNABLE = 'glibc.malloc.hugetlb'

/** Whether `env`'s GLIBC_TUNABLES already says something about huge pages (the operator's word). */
export function namesHugePages(env: NodeJS.ProcessEnv): boolean {
  return (env.GLIBC_TUNABLES ?? '').split(':').some(t => t.split('=')[0] === HUGE_PAGES_TUNABLE)
}

/** `env` with the huge-pages tunable added to GLIBC_TUNABLES, unless it already names it. */
export function withHugePages(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (namesHugePages(env)) return env
  const tunables = (env.GLIBC_TUNABLES ?? '').split(':').filter(t => t !== '')
  return { ...env, GLIBC_TUNABLES: [...tunables, `${HUGE_PAGES_TUNABLE}=1`].join(':') }
}

/**
 * Whether starting a process anew with the tunable would change anything: Linux with THP in
 * "madvise" mode (with "always" the kernel does it already, with "never" not at all), glibc
 * 2.35 or newer, and no word of the operator's on it in `env`.
 */
export function hugePagesWouldHelp(env: NodeJS.ProcessEnv): boolean {
  if (process.platform !== 'linux' || namesHugePages(env)) return false
  try {
    if (!readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8').includes('[madvise]')) return false
  } catch {
    return false
  }
  // The report's header names the C library's version (glibc only); without its network part it takes ~5 ms.
  const report = process.report as typeof process.report & { excludeNetwork?: boolean }
  report.excludeNetwork = true
  const glibc = (report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime
  const [major, minor] = (glibc ?? '0.0').split('.').map(Number)
  return major > 2 || (major === 2 && minor >= 35)
}
