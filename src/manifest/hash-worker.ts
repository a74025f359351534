import { parentPort } from 'node:worker_threads'
import { FileChangedError, hashFileSync } from './hash-file.js'
import type { HashBatch, HashBatchResult } from './hash-pool.js'
import { hashClaimed, type TableAnswer, type TableRequest } from './hash-table.js'
import { answerWalk, type WalkRequest } from './walk-dir.js'

// One worker thread of the hash pool: takes a batch of files, answers with their digests.
// Errors travel back per file as a code; the pool turns them into messages naming the path.
// Digests travel packed in one buffer per batch (HashBatchResult).
// A table request (hash-table.ts) is answered once, when no job is left to claim.
// A walk request (scan.ts) is answered as walk-worker.ts answers it: a full gendsync walks the
// tree on the threads that then hash it, rather than starting a second set (full-run.ts).
parentPort!.on('message', (batch: HashBatch | TableRequest | WalkRequest) => {
  if ('dirs' in batch) {
    answerWalk(parentPort!, batch)
    return
  }
  if ('table' in batch) {
    const error = hashClaimed(batch.jobs, batch.out, batch.pieceLength, batch.counters)
    parentPort!.postMessage((error ? { error } : {}) satisfies TableAnswer)
    return
  }
  const out: HashBatchResult = { batch: batch.batch, ids: [], offsets: [], pieces: [], tails: [], errors: [], digests: new Uint8Array(0) }
  const parts: Buffer[] = []
  let size = 0
  for (const job of batch.jobs) {
    out.ids.push(job.id)
    out.offsets.push(size)
    try {
      const d = hashFileSync(job.path, job, batch.pieceLength, job.tail === true)
      parts.push(d.sha256, d.pieces)
      size += 32 + d.pieces.length
      if (d.tail) {
        parts.push(d.tail)
        size += 20
      }
      out.pieces.push(d.pieces.length / 20)
      out.tails.push(d.tail !== undefined)
      out.errors.push(undefined)
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      out.pieces.push(0)
      out.tails.push(false)
      out.errors.push(err instanceof FileChangedError ? 'CHANGED' : (e.code ?? e.message))
    }
  }
  const digests = Buffer.concat(parts, size)
  // A fresh buffer of its own (concat of more than one part never shares the pool), moved, not copied.
  out.digests = new Uint8Array(digests.buffer, digests.byteOffset, digests.byteLength)
  parentPort!.postMessage(out, size > 0 && digests.byteOffset === 0 && digests.buffer.byteLength === size ? [digests.buffer] : [])
})
