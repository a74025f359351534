import { mkdirSync } from 'node:fs'
import { parentPort, workerData } from 'node:worker_threads'

// The folders worker (new-folders.ts prepareFolders): makes the plan's new folders under
// `<staging>/folders/` (a killed run's leftover was taken apart before: recoverAhead), one
// mkdirSync after another on this thread. Answers true when every one was made, false on any
// failure. The stage workers may make some first (a file placed ahead): EEXIST is fine.
const { root, paths } = workerData as { root: string; paths: string[] }

function makeAll(): boolean {
  try {
    for (const path of paths) makeOne(`${root}/${path}`)
    return true
  } catch {
    return false
  }
}

/** One mkdir(2) when the parent is there (a plan lists parents first); mkdir -p when it is not (a parent DEST has already). */
function makeOne(dir: string): void {
  try {
    mkdirSync(dir, { mode: 0o755 })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') return
    if (code !== 'ENOENT') throw err
    mkdirSync(dir, { mode: 0o755, recursive: true })
  }
}

parentPort!.postMessage(makeAll())
