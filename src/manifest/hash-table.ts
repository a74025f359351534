import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { DsyncError, ExitCode, describeErrno } from '../errors.js'
import { FileChangedError, hashFileInto, type DigestSink } from './hash-file.js'

/**
 * Many files hashed into tables in shared memory (a full gendsync): no message, object or
 * callback per file. The workers get the whole table once, claim files one at a time from a
 * shared counter (so a worker never waits for the main thread, and a big file late in the
 * list does not leave the other worker idle), and write each digest where the caller wants it:
 * the SHA-256 at `slot * 32`, the zero-padded piece hashes at `pieceAt[slot]`, the unpadded
 * last-piece hash at `slot * 20`. At 200k small files the batch messages of hash-pool.ts
 * (a job object per file cloned there, digests packed and unpacked back) cost ~0.5 s a worker.
 */
export interface TableJobs {
  count: number
  /** Paths as UTF-8 bytes, job j's at [pathAt[j], pathAt[j + 1]): absolute, or relative to the working directory (publish/repo-cwd.ts). */
  paths: Uint8Array
  pathAt: Float64Array
  /** What the walk saw; a file that differs after the read is refused (FileChangedError). */
  size: Float64Array
  mtimeMs: Float64Array
  ino: Float64Array
  /** Where job j's digests go in the output tables. */
  slot: Int32Array
  /** 1: also the unpadded hash of the last piece (the file ends a torrent). */
  tail: Uint8Array
  /**
   * Set to 1 (Atomics.store) once job j's digests are in the output tables: the caller can use
   * them while the rest are still being hashed (full-run.ts fills data.dsync as they come).
   */
  done: Uint8Array
}

/** Output tables, indexed by slot (the caller sizes them; shared memory when workers write them). */
export interface DigestTables {
  sha256: Uint8Array
  pieces: Uint8Array
  /** Byte offset of slot s's piece hashes in `pieces`. */
  pieceAt: Float64Array
  tails: Uint8Array
}

export interface TableProgress {
  filesDone: number
  bytesDone: number
}

/** A message from a table worker: done, or the first file it could not read. */
export interface TableAnswer {
  error?: { job: number; code: string }
}

export interface TableRequest {
  table: true
  jobs: TableJobs
  out: DigestTables
  pieceLength: number
  /** [next job to claim, files done, bytes done]. */
  counters: BigInt64Array
}

// Starting workers costs ~0.1 s; a handful of files is hashed on this thread.
const INLINE_FILES = 1000
const INLINE_BYTES = 64 << 20

/** Shared tables sized for `count` jobs whose paths take `pathBytes`. */
export function allocJobs(count: number, pathBytes: number): TableJobs {
  return {
    count, paths: shared(Uint8Array, pathBytes), pathAt: shared(Float64Array, count + 1), size: shared(Float64Array, count),
    mtimeMs: shared(Float64Array, count), ino: shared(Float64Array, count), slot: shared(Int32Array, count), tail: shared(Uint8Array, count),
    done: shared(Uint8Array, count),
  }
}

/** Output tables for `slots` files, slot s's piece hashes at pieceAt[s] (pieceAt[slots]: their total), in shared memory. */
export function allocDigests(slots: number, pieceAt: Float64Array): DigestTables {
  return {
    sha256: shared(Uint8Array, slots * 32), pieces: shared(Uint8Array, pieceAt[slots]), pieceAt, tails: shared(Uint8Array, slots * 20),
  }
}

function shared<T extends Uint8Array | Int32Array | Float64Array | BigInt64Array>(
  Kind: { new (b: SharedArrayBuffer): T; BYTES_PER_ELEMENT: number }, n: number,
): T {
  return new Kind(new SharedArrayBuffer(Math.max(1, n) * Kind.BYTES_PER_ELEMENT))
}

/** More files than this are always hashed on workers (hashTable), whatever their size. */
export const WORKERS_ABOVE_FILES = INLINE_FILES

const defaultThreads = () => Math.max(1, Math.min(availableParallelism(), 8))

/**
 * Hash workers started before their jobs are known, for hashTable's `started`: a worker's
 * start-up (module loading, ~0.05-0.1 s of CPU) then runs while the caller still plans the
 * jobs on one core (a full gendsync, between the walk and the hashing), not after.
 */
export function startHashWorkers(threads = defaultThreads()): Worker[] {
  return Array.from({ length: threads }, () => new Worker(new URL('./hash-worker.js', import.meta.url)))
}

/**
 * Hashes every job into `out`, on worker threads (one per core, at most 8; or the `started`
 * ones, which it then owns and terminates), reporting progress about ten times a second.
 * Rejects with a DsyncError naming the first file that could not be read, or that changed
 * while it was read (`shownBase` before its path: the repository, when the paths are relative).
 */
export async function hashTable(
  jobs: TableJobs, out: DigestTables, pieceLength: number, onProgress?: (p: TableProgress) => void,
  threads = defaultThreads(), started?: Worker[], shownBase = '',
): Promise<void> {
  let bytes = 0
  for (let j = 0; j < jobs.count; j++) bytes += jobs.size[j]
  const counters = shared(BigInt64Array, 3)
  if (jobs.count === 0 || (jobs.count <= INLINE_FILES && bytes <= INLINE_BYTES)) {
    if (started) await Promise.all(started.map(w => w.terminate()))
    const failed = jobs.count > 0 ? hashClaimed(jobs, out, pieceLength, counters) : undefined
    if (failed) throw tableError(jobs, failed, shownBase)
    return
  }
  const workers = started ?? startHashWorkers(Math.min(threads, jobs.count))
  const report = () => onProgress?.({ filesDone: Number(Atomics.load(counters, 1)), bytesDone: Number(Atomics.load(counters, 2)) })
  const timer = onProgress ? setInterval(report, 100) : undefined
  try {
    await Promise.all(workers.map(w => new Promise<void>((resolve, reject) => {
      w.once('message', (a: TableAnswer) => {
        if (!a.error) return resolve()
        Atomics.store(counters, 0, BigInt(jobs.count)) // the others stop claiming
        reject(tableError(jobs, a.error, shownBase))
      })
      w.on('error', reject)
      w.on('exit', code => { if (code !== 0) reject(new Error(`hash worker exited with code ${code}`)) })
      w.postMessage({ table: true, jobs, out, pieceLength, counters } satisfies TableRequest)
    })))
    report()
  } finally {
    clearInterval(timer)
    await Promise.all(workers.map(w => w.terminate()))
  }
}

/**
 * Claims jobs from `counters[0]` until none is left, hashing each into `out`. Returns the
 * first failure (job and error code), leaving the rest to whoever still claims.
 */
export function hashClaimed(jobs: TableJobs, out: DigestTables, pieceLength: number, counters: BigInt64Array): { job: number; code: string } | undefined {
  const paths = Buffer.from(jobs.paths.buffer, jobs.paths.byteOffset, jobs.paths.byteLength)
  const sha = Buffer.from(out.sha256.buffer, out.sha256.byteOffset, out.sha256.byteLength)
  const pieces = Buffer.from(out.pieces.buffer, out.pieces.byteOffset, out.pieces.byteLength)
  const tails = Buffer.from(out.tails.buffer, out.tails.byteOffset, out.tails.byteLength)
  // One sink, moved from slot to slot: each file's digests are written straight into the tables.
  const sink: DigestSink = { sha256: sha, sha256At: 0, pieces, piecesAt: 0, tails, tailAt: 0 }
  for (;;) {
    const j = Number(Atomics.add(counters, 0, 1n))
    if (j >= jobs.count) return undefined
    const path = paths.subarray(jobs.pathAt[j], jobs.pathAt[j + 1])
    const size = jobs.size[j]
    try {
      const s = jobs.slot[j]
      sink.sha256At = s * 32
      sink.piecesAt = out.pieceAt[s]
      sink.tailAt = s * 20
      hashFileInto(path, { size, mtimeMs: jobs.mtimeMs[j], ino: jobs.ino[j] }, pieceLength, jobs.tail[j] === 1, sink)
      Atomics.store(jobs.done, j, 1)
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      return { job: j, code: err instanceof FileChangedError ? 'CHANGED' : (e.code ?? e.message) }
    }
    Atomics.add(counters, 1, 1n)
    Atomics.add(counters, 2, BigInt(size))
  }
}

function tableError(jobs: TableJobs, e: { job: number; code: string }, shownBase: string): DsyncError {
  const path = shownBase + Buffer.from(jobs.paths.buffer, jobs.paths.byteOffset, jobs.paths.byteLength).toString('utf8', jobs.pathAt[e.job], jobs.pathAt[e.job + 1])
  if (e.code === 'CHANGED') return new DsyncError(ExitCode.io, 'scan.changedWhileHashing', { path })
  return new DsyncError(ExitCode.io, 'fs.failed', { action: 'read', path, reason: describeErrno({ code: e.code } as NodeJS.ErrnoException) })
}
