import { mkdirSync, readFileSync } from 'node:fs'
import type { Worker } from 'node:worker_threads'
import { fsError } from '../errors.js'
import { t } from '../i18n/index.js'
import { DurableBatch } from '../util/durable-batch.js'
import { acquireLock } from '../util/lock.js'
import type { PublisherKey } from '../generation/keys.js'
import { DEFAULT_KEEP_DELTAS, publishGeneration } from '../generation/publish.js'
import { appendHashCache } from '../manifest/hash-cache.js'
import { generateHinted } from '../manifest/hinted.js'
import type { LineTable } from '../manifest/manifest-lines.js'
import { DSYNC_DIR, repoFiles, type RepoFiles } from '../manifest/paths.js'
import { EarlyOutputs, listContent, writeOutputs, writeShardOutputs, type ShardSummary } from '../manifest/outputs.js'
import { scanTreeParallel, type ScannedEntry } from '../manifest/scan.js'
import { startHashWorkers } from '../manifest/hash-table.js'
import { saveLines } from '../manifest/line-cache.js'
import { linesFile } from '../manifest/lines-file.js'
import { saveTables, type CachedTables } from '../manifest/table-cache.js'
import type { WarmMemory } from '../manifest/warm-memory.js'
import { fullTables } from './full-run.js'
import { inRepoDir } from './repo-cwd.js'
import { stillCurrent, type ReadAhead } from './read-ahead.js'

export interface GenerateOptions {
  name: string
  save: string
  trackers: string[]
  onProgress?: (p: GenerateProgress) => void
  onWarning?: (message: string) => void
  threads?: number
  /** The change hint (`gendsync --changed FILE`): repository paths changed since the last run. */
  changed?: string[]
  /** Sign a generation record (and write the delta from the previous data.dsync) with this key. */
  key?: PublisherKey
  /** Deltas kept beside the record (keep-deltas=). */
  keepDeltas?: number
  /** The previous generation's first files, read before the lock (read-ahead.ts); each used only if still current. */
  readAhead?: ReadAhead
  /**
   * The caller owns the process's working directory for the run (the CLI's gendsync): a full run
   * walks and hashes from inside the repository, its workers opening relative paths (repo-cwd.ts).
   */
  ownsCwd?: boolean
}

export interface GenerateProgress {
  phase: 'scan' | 'hash'
  entries: number
  filesDone: number
  filesTotal: number
  bytesDone: number
  bytesTotal: number
}

export interface GenerateResult {
  repo: string
  save: string
  /** False when the tree was as the last generation recorded; nothing was rewritten. */
  changed: boolean
  infoHash: string
  magnet: string
  pieceLength: number
  entries: number
  files: number
  bytes: number
  hashedFiles: number
  hashedBytes: number
  reusedFiles: number
  seconds: number
  manifestFile: string
  torrentFile: string
  /** A sharded repository's shard torrents (torrentFile is then the index); undefined: one torrent. */
  shards?: ShardSummary[]
  /** The signed generation record: its sequence number, and whether this run signed it. */
  record?: { seq: number; signed: boolean; deltas: number }
}

/** One run's outputs, before the record: the result, data.dsync, and piece hashes by path. */
interface Run {
  result: GenerateResult
  manifest: Buffer
  piecesOf: (path: string) => Buffer
  /** SHA-256s of data.dsync and of the previous one, when this run has them already. */
  known?: { manifest: string; previous?: string }
  /**
   * Caches of this generation, written while the batch's files are fsync'ed rather than after:
   * they name the new data.dsync's SHA-256, so if the commit does not happen they are ignored.
   */
  caches?: () => Promise<void>
  /** Both lists' line offsets, when this run has them already. */
  lines?: { old: LineTable; new: LineTable }
}

/**
 * A file modified this close to the scan may be modified again within the filesystem's
 * timestamp granularity without its mtime changing, so its digest is not cached (git's
 * "racy clean" problem). Mirrors' files carry upstream mtimes, far older than this.
 */
const RACY_MS = 2000

/** gendsync for one repository: data.dsync, the .torrent and the magnet link under `<save>/.dsync/`. */
export async function generateRepo(opts: GenerateOptions): Promise<GenerateResult> {
  const started = Date.now()
  const files = repoFiles(opts.save, opts.name)
  try {
    mkdirSync(files.dir, { recursive: true })
  } catch (err) {
    throw fsError(err, files.dir, 'write')
  }
  const lock = acquireLock(files.lock)
  try {
    const ahead = await opts.readAhead
    const previous = stillCurrent(ahead?.files, files.manifest) ?? readOrUndefined(files.manifest)
    const earlier = {
      torrent: stillCurrent(ahead?.files, files.torrent), tables: stillCurrent(ahead?.files, files.tables), lines: stillCurrent(ahead?.files, linesFile(files)),
      memory: ahead?.memory,
    }
    // Every output, the delta and the record: written and fsync'ed side by side, renamed in order at the end.
    const batch = new DurableBatch()
    try {
      const run = await outputs(opts, files, previous, started, batch, earlier)
      const published = opts.key && publishGeneration({
        repo: opts.name, save: opts.save, trackers: opts.trackers, key: opts.key, keepDeltas: opts.keepDeltas ?? DEFAULT_KEEP_DELTAS,
        previous, manifest: run.manifest, infoHash: run.result.infoHash, shards: run.result.shards?.map(s => s.infoHash) ?? [], piecesOf: run.piecesOf,
        known: run.known, lines: run.lines, batch,
      })
      const caches = run.caches?.()
      try {
        await batch.commit()
      } finally {
        // Never fails (only a cache); done before the lock is released.
        await caches
      }
      run.result.record = published ? { seq: published.record.seq, signed: published.signed, deltas: published.record.deltas.length } : undefined
      run.result.seconds = (Date.now() - started) / 1000
      return run.result
    } catch (err) {
      await batch.abort()
      throw err
    }
  } finally {
    lock.release()
  }
}

/** The hinted run when a hint is given and it can be right, else the full run. */
async function outputs(
  opts: GenerateOptions, files: RepoFiles, previous: Buffer | undefined, started: number, batch: DurableBatch, earlier: PreviousRead,
): Promise<Run> {
  if (opts.changed) {
    const mark = batch.size
    const hinted = previous ? await hintedRun(opts, files, previous, opts.changed, started, batch, earlier) : 'no readable previous data.dsync'
    if (typeof hinted !== 'string') return hinted
    // What the hinted run staged before it found it could not be right.
    await batch.dropFrom(mark)
    opts.onWarning?.(t('scale.hintFallback', { repo: opts.name, reason: hinted }))
  }
  return fullRun(opts, files, previous, started, batch)
}

async function fullRun(opts: GenerateOptions, files: RepoFiles, previous: Buffer | undefined, started: number, batch: DurableBatch): Promise<Run> {
  return inRepoDir(opts.save, opts.ownsCwd === true, openBase => fullRunFrom(openBase, opts, files, previous, started, batch))
}

/** fullRun with the workers' path prefix (repo-cwd.ts). */
async function fullRunFrom(
  openBase: string, opts: GenerateOptions, files: RepoFiles, previous: Buffer | undefined, started: number, batch: DurableBatch,
): Promise<Run> {
  // A tree big enough to be walked on threads is hashed on the same ones (fullTables ends them).
  let workers: Worker[] | undefined
  let scanned: ScannedEntry[]
  try {
    scanned = await scanTreeParallel(opts.save, {
      threads: opts.threads,
      workers: () => (workers ??= startHashWorkers(opts.threads)),
      excludeTop: [DSYNC_DIR],
      workerBase: openBase,
      onWarning: opts.onWarning,
      onEntry: n => opts.onProgress?.({ phase: 'scan', entries: n, filesDone: 0, filesTotal: 0, bytesDone: 0, bytesTotal: 0 }),
    })
  } catch (err) {
    await Promise.all(workers?.map(w => w.terminate()) ?? [])
    throw err
  }
  const g = await fullTables(scanned, {
    save: opts.save, name: opts.name, trackers: opts.trackers, threads: opts.threads, hashCache: files.hashCache, racyAfterMs: started - RACY_MS, onWarning: opts.onWarning,
    onHashProgress: p => opts.onProgress?.({ phase: 'hash', entries: scanned.length, ...p }), workers, openBase,
  })
  // The hash cache is written while the outputs are: it only lets a later run skip reading files.
  g.saveCache(batch, files.hashCache)
  const common = { name: opts.name, trackers: opts.trackers, manifest: g.manifest, previous, pieceLength: g.pieceLength }
  const published = g.shards
    ? writeShardOutputs(files, { ...common, shards: g.shards }, batch)
    : writeOutputs(files, { ...common, starts: g.starts, content: g.content }, batch)
  const result: GenerateResult = {
    repo: opts.name, save: opts.save, changed: published.changed, infoHash: published.infoHash, magnet: published.magnet, pieceLength: g.pieceLength,
    entries: scanned.length, files: g.files, bytes: g.bytes, hashedFiles: g.hashed, hashedBytes: g.hashedBytes, reusedFiles: g.reused,
    seconds: (Date.now() - started) / 1000, manifestFile: files.manifest, torrentFile: files.torrent, shards: published.shards,
  }
  return { result, manifest: g.manifest, piecesOf: g.piecesOf, known: { manifest: g.sha256 }, caches: g.shards && g.tables && fullRunCaches(files, g.sha256, g.pieceLength, g.tables) }
}

/**
 * What a hinted run leaves for the next one, left by a full run too: the list's line offsets and
 * its content table and costs (sharded repositories, where the next hinted run splices shards
 * with them). Without them the first hinted run after a full one indexed the list and built the
 * tables itself: 0.32 against 0.42 s in-process at 200k files, for ~0.1 s more of the full run
 * (docs/SCALE.md, session 21). Written while the batch's writes are in flight (generateRepo calls
 * `caches` before the commit), from what the run made on the way (fullTables: the shards'
 * encoding indexed the list, the placement costed every file) and the SHA-256 sealing the list
 * gave (resealManifest): no pass over the list of their own (session 22).
 */
function fullRunCaches(files: RepoFiles, sha256: string, pieceLength: number, tables: CachedTables): () => Promise<void> {
  const lines = tables.table.lines
  return async () => {
    await Promise.all([saveTables(files.tables, sha256, pieceLength, tables), saveLines(linesFile(files), sha256, lines.starts.subarray(0, lines.count + 1))])
  }
}

/** The previous index torrent's, tables' and line offsets' bytes, when read ahead and still current; memory warmed for the new outputs. */
type PreviousRead = { torrent?: Buffer; tables?: Buffer; lines?: Buffer; memory?: WarmMemory }

/** gendsync --changed: the previous generation edited where the hint says (hinted.ts). */
async function hintedRun(
  opts: GenerateOptions, files: RepoFiles, previous: Buffer, changed: string[], started: number, batch: DurableBatch, earlier: PreviousRead,
): Promise<Run | string> {
  const early = new EarlyOutputs(files, batch, previous)
  const g = await generateHinted(opts.save, files, previous, changed, { name: opts.name, trackers: opts.trackers }, opts.threads, early, earlier)
  if (typeof g === 'string') return g
  const common = { name: opts.name, trackers: opts.trackers, manifest: g.manifest, previous, pieceLength: g.pieceLength, staged: early.staged }
  const published = 'unchanged' in g.torrents
    ? { changed: false, ...g.torrents.unchanged }
    : 'shards' in g.torrents
    ? writeShardOutputs(files, { ...common, shards: g.torrents.shards, listPieces: g.torrents.listPieces }, batch)
    : writeOutputs(files, { ...common, starts: g.torrents.starts, content: listContent(g.torrents.content) }, batch)
  const racyAfterMs = started - RACY_MS
  appendHashCache(files.hashCache, g.pieceLength, g.hashed.filter(h => h.entry.mtimeMs <= racyAfterMs).map(h =>
    [h.path, { size: h.entry.size, mtimeMs: h.entry.mtimeMs, ctimeMs: h.entry.ctimeMs, ino: h.entry.ino, ...h.digest }]))
  // The delta names changed files only, and every one of them was read: their own digests.
  const read = new Map(g.hashed.map(h => [h.path, h.digest.pieces]))
  const result: GenerateResult = {
    repo: opts.name, save: opts.save, changed: published.changed, infoHash: published.infoHash, magnet: published.magnet,
    pieceLength: g.pieceLength, entries: g.entries, files: g.files, bytes: g.bytes,
    hashedFiles: g.hashed.length, hashedBytes: g.hashed.reduce((sum, h) => sum + h.entry.size, 0), reusedFiles: g.files - g.hashed.length,
    seconds: (Date.now() - started) / 1000, manifestFile: files.manifest, torrentFile: files.torrent, shards: published.shards,
  }
  const piecesOf = (path: string) => {
    const pieces = read.get(path)
    if (!pieces) throw new Error(`the delta names ${path}, which this run did not read`)
    return pieces
  }
  const tables = g.tables
  // Beside the tables, the new list's line offsets (the splice's): the next hinted run takes them
  // instead of indexing the list again (line-cache.ts).
  const starts = g.lines.new.starts.subarray(0, g.lines.new.count + 1)
  // Nothing changed: the caches on disk are for this very list, or absent (then the next hinted run makes them).
  const caches = 'unchanged' in g.torrents ? undefined : async () => {
    await Promise.all([tables && saveTables(files.tables, g.sha256.manifest, g.pieceLength, tables), saveLines(linesFile(files), g.sha256.manifest, starts)])
  }
  return { result, manifest: g.manifest, piecesOf, known: g.sha256, lines: g.lines, caches }
}

function readOrUndefined(file: string): Buffer | undefined {
  try {
    return readFileSync(file)
  } catch {
    return undefined
  }
}
