import { parentPort } from 'node:worker_threads'
import { FileChangedError, hashFileSync } from './hash-file.js'
import type { HashBatch, HashBatchResult, HashResult } from './hash-pool.js'

// One worker thread of the hash pool: takes a batch of files, answers with their digests.
// Errors travel back per file as a code; the pool turns them into messages naming the path.
// Digests are copied, not transferred: 20 bytes a piece is nothing next to the data read.
parentPort!.on('message', (batch: HashBatch) => {
  const results: HashResult[] = []
  for (const job of batch.jobs) {
    try {
      const d = hashFileSync(job.path, job, batch.pieceLength, job.tail === true)
      results.push({ id: job.id, sha256: d.sha256, pieces: d.pieces, tail: d.tail })
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      results.push({ id: job.id, error: err instanceof FileChangedError ? 'CHANGED' : (e.code ?? e.message) })
    }
  }
  parentPort!.postMessage({ batch: batch.batch, results } satisfies HashBatchResult)
})
