import { setTimeout as sleep } from 'node:timers/promises'
import { syncFileSystem } from './staging.js'

/** Pause between two background syncs: each costs a process spawn (a few ms) and one flush of the disk's cache. */
const GAP_MS = 1000

/**
 * While a transfer stages many files, `sync -f` of staging's filesystem runs in the background
 * again and again (one at a time, GAP_MS apart), so the kernel writes staged data out while
 * the network is still busy. The sync that makes them durable before the apply
 * (Staging.syncAll) then waits for the last second's writes only: it waited 1.5 s of an 18 s
 * 200,000-file bootstrap (profile, bench sync, final5) and 0.7 s of a 12 s 20,000-file / 1 GiB
 * one, the event loop idle, the network done. Nothing here is a guarantee: the final
 * sync is. Returns the stop function (it does not wait for a sync under way).
 */
export function backgroundWriteback(dir: string): () => void {
  let stopped = false
  const loop = async () => {
    while (!stopped) {
      await sleep(GAP_MS, undefined, { ref: false })
      if (stopped || !(await syncFileSystem(dir))) return
    }
  }
  void loop()
  return () => {
    stopped = true
  }
}
