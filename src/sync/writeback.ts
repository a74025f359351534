import { spawn, type ChildProcess } from 'node:child_process'

/** Pause between two background syncs, in seconds: each is one flush of the disk's cache. */
const GAP_S = 1

/**
 * While a transfer stages many files, `sync -f` of staging's filesystem runs in the background
 * again and again (one at a time, GAP_S apart), so the kernel writes staged data out while the
 * network is still busy. The sync that makes them durable before the apply (Staging.syncAll)
 * then waits for the last second's writes only: it waited 1.5 s of an 18 s 200,000-file
 * bootstrap (profile, bench sync, final5) and 0.7 s of a 12 s 20,000-file / 1 GiB one, the
 * event loop idle, the network done. Nothing here is a guarantee: the final sync is.
 *
 * One shell runs the loop: spawning `sync` from the client itself cost its event loop ~15 ms
 * each (fork of a 260 MB process; 0.2 s of a 24 s profile). The shell stops when told to, or by
 * itself once the process that started it is gone (a SIGKILLed pull leaves no syncing loop).
 * Returns the stop function.
 *
 * A sharded pull (docs/SCALE.md) runs one transfer per shard, one after another: the shell is
 * shared by them and stopped only when no transfer has used it for KEEP_MS (a spawn per shard was
 * 17 spawns, `ChildProcess.spawn` 0.34 s of the 200,000-file bootstrap's event loop, session 8).
 */
export function backgroundWriteback(dir: string): () => void {
  if (shared?.dir !== dir || shared.child.exitCode !== null || shared.child.signalCode !== null) {
    shared?.child.kill()
    shared = { dir, child: startLoop(dir), users: 0 }
  }
  const loop = shared
  loop.users++
  clearTimeout(loop.stopTimer)
  let stopped = false
  return () => {
    if (stopped) return
    stopped = true
    if (--loop.users > 0) return
    loop.stopTimer = setTimeout(() => {
      loop.child.kill()
      if (shared === loop) shared = undefined
    }, KEEP_MS)
    loop.stopTimer.unref()
  }
}

/** How long the shell outlives the last transfer using it, for the next shard's transfer. */
const KEEP_MS = 250

let shared: { dir: string; child: ChildProcess; users: number; stopTimer?: NodeJS.Timeout } | undefined

function startLoop(dir: string): ChildProcess {
  const loop = `while kill -0 ${process.pid} 2>/dev/null && sync -f "$1"; do sleep ${GAP_S}; done`
  const child = spawn('sh', ['-c', loop, 'sh', dir], { stdio: 'ignore' })
  child.on('error', () => undefined) // no sh: the final sync does it all, as before
  child.unref()
  return child
}
