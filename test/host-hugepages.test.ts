import assert from 'node:assert/strict'
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { readPid } from '../src/util/process.js'
import { runCli } from '../testbed/cli.js'
import { environOf, hugeKiB, hugePagesUntestable, TUNABLE } from '../testbed/huge-pages.js'
import { startShardedHost } from '../testbed/host.js'

/**
 * A host started by `dsync service` keeps its metadata in huge pages (src/util/huge-pages.ts):
 * glibc's malloc is asked to through GLIBC_TUNABLES in the service's environment, an
 * operator's own value of that tunable wins and other tunables are kept. A real service on
 * 127.0.25.2 serves a sharded repository whose data.dsync is several MiB (read into malloc'd
 * memory at every start); the kernel's own count of the process's anonymous huge pages
 * (/proc/PID/smaps_rollup) says whether it was done. (Not /proc/PID/environ for the tunables:
 * glibc's parser cuts that copy at the first ':' in place.) Controls first: a plain node process
 * given the tunable must get huge pages for an 8 MB buffer and one without it none; a machine
 * where that does not hold (THP off, "always", an old or non-glibc libc) skips with a message.
 */
const ADDR = '127.0.25.2'

test('dsync service runs the host with glibc malloc in huge pages; an operator\'s tunable wins', { skip: hugePagesUntestable() }, async () => {
  const { host, save } = await startShardedHost(ADDR, 'pool')
  assert.ok(statSync(join(save, '.dsync', 'data.dsync')).size > 4 << 20, 'data.dsync is several MiB')
  const pidFile = join(host.home, 'run', 'dtp.pid')
  const running = async (env: NodeJS.ProcessEnv) => {
    const stop = await host.cli('stop-service')
    assert.equal(stop.code, 0, stop.stderr)
    // `service` returns once the started process answers: its repositories are loaded.
    const r = await runCli(['--home', host.home, 'service'], { env })
    assert.equal(r.code, 0, r.stderr)
    const pid = readPid(pidFile)!
    return { pid, huge: hugeKiB(pid), tunables: environOf(pid).GLIBC_TUNABLES }
  }

  // As started by startShardedHost: no tunable of the operator's.
  const pid = readPid(pidFile)!
  assert.ok(hugeKiB(pid) >= 2048, `the host's memory has huge pages (AnonHugePages ${hugeKiB(pid)} kB)`)

  // An operator's other tunables are kept beside it.
  const kept = await running({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=4' })
  assert.ok(kept.huge >= 2048, `huge pages with the operator's other tunable (${kept.huge} kB)`)

  // An operator who turns it off gets it off: the same host, no huge pages.
  const off = await running({ GLIBC_TUNABLES: `${TUNABLE}=0` })
  assert.equal(off.tunables, `${TUNABLE}=0`)
  assert.equal(off.huge, 0, 'the operator\'s hugetlb=0 is what the service runs with')
})
