import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

// A long list's pull bounds how far V8's old generation grows between full collections
// (src/util/release-memory.ts). On a small live heap a bound in percent alone left a few MB
// between them: ~60 full collections in a 200k-file bootstrap. boundHeapGrowthAtLeast keeps a
// floor in bytes. V8's flags are the process's, so each case runs in a process of its own:
// it drops old-generation garbage (arrays big enough to be allocated there directly) and
// counts the full collections that came.

const MODULE = fileURLToPath(new URL('../src/util/release-memory.js', import.meta.url))

/** Full collections while 192 MiB of old-generation garbage is made, after `bound` ran on a heap of a few MB live. */
function fullCollections(bound: string): number {
  const script = `
    import { PerformanceObserver, constants } from 'node:perf_hooks'
    import { boundHeapGrowth, boundHeapGrowthAtLeast, collectNow } from ${JSON.stringify(MODULE)}
    collectNow()
    ${bound}
    collectNow()
    let majors = 0
    const seen = new PerformanceObserver(list => {
      for (const e of list.getEntries()) if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors++
    })
    seen.observe({ entryTypes: ['gc'] })
    // 256 KiB arrays (64k elements of 4 bytes; fewer than V8's 100k, so not a dictionary), each
    // kept while the next 32 are made: alive at a scavenge, so moved to the old generation,
    // where it dies (promoted garbage, as a pull's per-piece objects in flight are).
    const window = []
    for (let i = 0; i < 768; i++) {
      window.push(new Array(64 * 1024).fill(i))
      if (window.length > 32) window.shift()
    }
    setTimeout(() => { seen.disconnect(); process.stdout.write(String(majors)) }, 50)
  `
  return Number(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }))
}

test('a heap-growth floor spaces full collections by at least its bytes on a small live heap', () => {
  const percentOnly = fullCollections('boundHeapGrowth(20)')
  const floored = fullCollections('boundHeapGrowthAtLeast(20, 32 << 20)')
  // 192 MiB of promoted garbage, at least 32 MiB of it between collections: 2 seen (V8's limit
  // adds more room than the floor); by 20% of a few MB live: 12-13 seen. A floor not applied
  // (the percent alone) gave 12 against 13.
  assert.ok(floored <= 9, `with the floor: ${floored} full collections`)
  assert.ok(percentOnly >= 2 * floored, `20% alone: ${percentOnly} full collections, with the floor ${floored}`)
})
