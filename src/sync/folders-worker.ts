import { mkdirSync } from 'node:fs'
import { parentPort, workerData } from 'node:worker_threads'

// The folders worker (new-folders.ts prepareFolders): makes the plan's new folders under
// `<staging>/folders/` (a killed run's leftover was taken apart before: recoverAhead), one
// mkdirSync after another on this thread. Answers true when every one was made, false on any
// failure. The stage workers may make some first (a file placed ahead): EEXIST is fine.
// The paths come as one buffer (folderNames: UTF-8, each ended by a NUL), decoded one at a time.
const { root, names } = workerData as { root: string; names: ArrayBuffer }

function makeAll(): boolean {
  const bytes = Buffer.from(names)
  try {
    for (let at = 0; at < bytes.length;) {
      const end = bytes.indexOf(0, at)
      makeOne(`${root}/${bytes.toString('utf8', at, end)}`)
      at = end + 1
    }
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
