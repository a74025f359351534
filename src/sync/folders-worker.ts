import { mkdirSync, rmSync } from 'node:fs'
import { parentPort, workerData } from 'node:worker_threads'

// The folders worker (new-folders.ts prepareFolders): removes a killed run's leftover
// `<staging>/folders/`, then makes the plan's new folders under it, one mkdirSync after another
// on this thread. Answers true when every one was made, false on any failure.
const { root, paths } = workerData as { root: string; paths: string[] }

function makeAll(): boolean {
  try {
    rmSync(root, { recursive: true, force: true })
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
