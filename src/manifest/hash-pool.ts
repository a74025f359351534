import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { DsyncError, ExitCode, describeErrno } from '../errors.js'
import { FileChangedError, hashFileSync, type FileDigest, type FileIdentity } from './hash-file.js'

export interface HashJob extends FileIdentity {
  id: number
  path: string
  /** Also compute the unpadded hash of the last piece (the file that ends the torrent). */
  tail?: boolean
}
export interface HashBatch {
  batch: number
  pieceLength: number
  jobs: HashJob[]
}
/**
 * A batch's answer: every digest packed into one buffer (transferred, not copied), and per
 * job its id, where its digests start, its piece count, whether a tail follows, or an error.
 * At 200k small files, three small typed arrays per file cloned through postMessage cost
 * more than the hashing of some of them, and as many objects for the collector.
 */
export interface HashBatchResult {
  batch: number
  ids: number[]
  /** Offset of each job's SHA-256 in `digests`; its piece hashes follow, then its tail if `tails[i]`. */
  offsets: number[]
  pieces: number[]
  tails: boolean[]
  errors: (string | undefined)[]
  digests: Uint8Array
}

// A batch closes at whichever comes first; small files are batched to amortise messages,
// big ones go alone so both workers stay busy to the end.
const BATCH_FILES = 128
const BATCH_BYTES = 16 << 20
// Starting workers costs ~0.1 s; a handful of changed files is hashed on this thread.
const INLINE_FILES = 1000
const INLINE_BYTES = 64 << 20

function hashInline(jobs: HashJob[], pieceLength: number, onDone: (job: HashJob, digest: FileDigest) => void): void {
  for (const job of jobs) {
    let d: FileDigest
    try {
      d = hashFileSync(job.path, job, pieceLength, job.tail === true)
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      throw hashError(job.path, err instanceof FileChangedError ? 'CHANGED' : (e.code ?? e.message))
    }
    onDone(job, d)
  }
}

/**
 * Hashes files on worker threads (one per core), calling `onDone` as each file completes.
 * Rejects with a DsyncError naming the first file that could not be read.
 */
export async function hashFiles(
  jobs: HashJob[],
  pieceLength: number,
  onDone: (job: HashJob, digest: FileDigest) => void,
  threads = Math.max(1, Math.min(availableParallelism(), 8)),
): Promise<void> {
  if (jobs.length === 0) return
  if (jobs.length <= INLINE_FILES && jobs.reduce((s, j) => s + j.size, 0) <= INLINE_BYTES) return hashInline(jobs, pieceLength, onDone)
  const batches = makeBatches(jobs, pieceLength)
  const byId = new Map(jobs.map(j => [j.id, j]))
  const workers = Array.from({ length: Math.min(threads, batches.length) },
    () => new Worker(new URL('./hash-worker.js', import.meta.url)))
  let next = 0
  try {
    await new Promise<void>((resolve, reject) => {
      let outstanding = 0
      const feed = (w: Worker) => {
        if (next < batches.length) {
          outstanding++
          w.postMessage(batches[next++])
        } else if (outstanding === 0) resolve()
      }
      for (const w of workers) {
        w.on('message', (msg: HashBatchResult) => {
          outstanding--
          const all = toBuffer(msg.digests)
          for (let i = 0; i < msg.ids.length; i++) {
            const job = byId.get(msg.ids[i])!
            const error = msg.errors[i]
            if (error) return reject(hashError(job.path, error))
            const at = msg.offsets[i]
            const end = at + 32 + msg.pieces[i] * 20
            onDone(job, { sha256: all.subarray(at, at + 32), pieces: all.subarray(at + 32, end), tail: msg.tails[i] ? all.subarray(end, end + 20) : undefined })
          }
          feed(w)
        })
        w.on('error', reject)
        w.on('exit', code => { if (code !== 0) reject(new Error(`hash worker exited with code ${code}`)) })
        // Two batches in flight per worker so it never waits on the main thread.
        feed(w)
        feed(w)
      }
    })
  } finally {
    await Promise.all(workers.map(w => w.terminate()))
  }
}

function makeBatches(jobs: HashJob[], pieceLength: number): HashBatch[] {
  const batches: HashBatch[] = []
  let current: HashJob[] = []
  let bytes = 0
  for (const job of jobs) {
    current.push(job)
    bytes += job.size
    if (current.length >= BATCH_FILES || bytes >= BATCH_BYTES) {
      batches.push({ batch: batches.length, pieceLength, jobs: current })
      current = []
      bytes = 0
    }
  }
  if (current.length > 0) batches.push({ batch: batches.length, pieceLength, jobs: current })
  return batches
}

function hashError(path: string, code: string): DsyncError {
  if (code === 'CHANGED') return new DsyncError(ExitCode.io, 'scan.changedWhileHashing', { path })
  return new DsyncError(ExitCode.io, 'fs.failed', { action: 'read', path, reason: describeErrno({ code } as NodeJS.ErrnoException) })
}

function toBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength)
}
