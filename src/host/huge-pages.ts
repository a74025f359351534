/**
 * The environment a host process is started in (`dsync service` in the background, the
 * systemd unit `dsync startup` installs): glibc's malloc asked to back its large blocks with
 * transparent huge pages (`glibc.malloc.hugetlb=1`: madvise(MADV_HUGEPAGE) on its heap and its
 * mmap'd blocks; glibc 2.35+).
 *
 * Why: a host reads every generation's metadata into fresh memory at each start and reload
 * (at 1M files data.dsync is 153 MB and the shard torrents 147 MB), and the first touch of a
 * fresh 4 KiB page is slow on virtual machines: ~25 us a page on the project's VM, so those
 * 300 MB cost more than the checks made on them. With 2 MiB pages there are 512 times fewer
 * first touches: a 1M-file host's start to HTTP went from 8.6-9.6 s to 5.4-5.8 s, CPU from
 * 5.1-6.6 s to 3.3-3.7 s, peak RSS unchanged (docs/ARCHITECTURE.md, "Host start: huge pages").
 *
 * Only glibc reads the variable (musl ignores it), a kernel with THP set to "never" ignores
 * the advice, and an operator's own value of the tunable wins; other tunables are kept.
 * It must be in the environment when the process starts: glibc reads it once, at exec.
 */
export const HUGE_PAGES_TUNABLE = 'glibc.malloc.hugetlb'

/** `env` with the huge-pages tunable added to GLIBC_TUNABLES, unless it already names it. */
export function withHugePages(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const tunables = (env.GLIBC_TUNABLES ?? '').split(':').filter(t => t !== '')
  if (tunables.some(t => t.split('=')[0] === HUGE_PAGES_TUNABLE)) return env
  return { ...env, GLIBC_TUNABLES: [...tunables, `${HUGE_PAGES_TUNABLE}=1`].join(':') }
}
