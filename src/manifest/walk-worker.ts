import { parentPort } from 'node:worker_threads'
import { walkOne, type WalkedDir, type WalkRequest } from './walk-dir.js'

// A worker thread of the parallel walk (scan.ts): lists the folders it is sent (walk-dir.ts)
// and answers with their entries, the numbers' buffers moved rather than copied. Nothing but
// this entry point registers a handler, so importing walk-dir.ts elsewhere is harmless.
parentPort!.on('message', (req: WalkRequest) => {
  const out: WalkedDir[] = req.dirs.map(rel => walkOne(req.root, rel))
  parentPort!.postMessage(out, out.map(d => d.stats.buffer as ArrayBuffer))
})
