import { liveRsync } from './rsync.js'

/** What a running job does when the process is asked to stop (status 0, log line, lock released). */
type StopAction = () => void

const active = new Set<StopAction>()
let stopping: NodeJS.Signals | undefined

/** True once SIGTERM/SIGINT arrived: the pool starts nothing new. */
export function stopRequested(): NodeJS.Signals | undefined {
  return stopping
}

/** Registers a running job's stop action; the returned function unregisters it. */
export function onStop(action: StopAction): () => void {
  active.add(action)
  return () => active.delete(action)
}

/**
 * SIGTERM (sent by `dsync -emoff`), SIGINT (Ctrl-C) and SIGHUP (the terminal of a foreground
 * run closed) stop the runner cleanly: rsync
 * children get SIGTERM and are waited for (rsync removes its temporary file, so no partial
 * file is left in the tree); the swarm client is between verified steps whenever a signal
 * handler can run (its apply step is synchronous), so the live tree is whole; then each
 * running job records the stop and the process exits.
 */
export function installStopHandler(exitCode: number): void {
  const handler = (sig: NodeJS.Signals) => {
    if (stopping) return
    stopping = sig
    void (async () => {
      for (const child of liveRsync) child.kill('SIGTERM')
      const deadline = Date.now() + 20_000
      while (liveRsync.size > 0 && Date.now() < deadline) await new Promise(r => setTimeout(r, 50))
      for (const action of [...active]) {
        try {
          action()
        } catch {
          // best effort: the process is stopping
        }
      }
      process.exit(exitCode)
    })()
  }
  process.on('SIGTERM', handler)
  process.on('SIGINT', handler)
  process.on('SIGHUP', handler)
}
