import { parentPort } from 'node:worker_threads'
import { answerWalk, type WalkRequest } from './walk-dir.js'

// A worker thread of the parallel walk (scan.ts): lists the folders it is sent (walk-dir.ts)
// and answers with their entries, the numbers' buffers moved rather than copied. Nothing but
// this entry point registers a handler, so importing walk-dir.ts elsewhere is harmless.
parentPort!.on('message', (req: WalkRequest) => answerWalk(parentPort!, req))
