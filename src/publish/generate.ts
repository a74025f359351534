import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fsError } from '../errors.js'
import { t } from '../i18n/index.js'
import { pieceLengthFor } from '../torrent/layout.js'
import { shardStarts } from '../torrent/shards.js'
import { acquireLock } from '../util/lock.js'
import type { PublisherKey } from '../generation/keys.js'
import { DEFAULT_KEEP_DELTAS, publishGeneration } from '../generation/publish.js'
import type { ManifestEntry } from '../manifest/entry.js'
import { serializeManifest } from '../manifest/format.js'
import { appendHashCache, loadHashCache, saveHashCache, type CachedDigest } from '../manifest/hash-cache.js'
import { hashFiles, type HashJob } from '../manifest/hash-pool.js'
import { generateHinted } from '../manifest/hinted.js'
import { DSYNC_DIR, repoFiles, type RepoFiles } from '../manifest/paths.js'
import { writeOutputs, writeShardOutputs, type ShardSummary } from '../manifest/outputs.js'
import { scanTreeParallel, type ScannedEntry } from '../manifest/scan.js'

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
    const previous = readOrUndefined(files.manifest)
    let run: Run | undefined
    if (opts.changed) {
      const hinted = previous ? await hintedRun(opts, files, previous, opts.changed, started) : 'no readable previous data.dsync'
      if (typeof hinted === 'string') opts.onWarning?.(t('scale.hintFallback', { repo: opts.name, reason: hinted }))
      else run = hinted
    }
    run ??= await fullRun(opts, files, previous, started)
    const published = opts.key && publishGeneration({
      repo: opts.name, save: opts.save, trackers: opts.trackers, key: opts.key, keepDeltas: opts.keepDeltas ?? DEFAULT_KEEP_DELTAS,
      previous, manifest: run.manifest, infoHash: run.result.infoHash, shards: run.result.shards?.map(s => s.infoHash) ?? [], piecesOf: run.piecesOf,
      known: run.known,
    })
    run.result.record = published ? { seq: published.record.seq, signed: published.signed, deltas: published.record.deltas.length } : undefined
    run.result.seconds = (Date.now() - started) / 1000
    return run.result
  } finally {
    lock.release()
  }
}

async function fullRun(opts: GenerateOptions, files: RepoFiles, previous: Buffer | undefined, started: number): Promise<Run> {
  const scanned = await scanTreeParallel(opts.save, {
    threads: opts.threads,
    excludeTop: [DSYNC_DIR],
    onWarning: opts.onWarning,
    onEntry: n => opts.onProgress?.({ phase: 'scan', entries: n, filesDone: 0, filesTotal: 0, bytesDone: 0, bytesTotal: 0 }),
  })
  const content = scanned.filter(e => e.type === 'f')
  const pieceLength = pieceLengthFor(content.reduce((sum, e) => sum + e.size, 0))
  // Empty files take no pieces; data.dsync alone recreates them.
  const inTorrent = content.filter(e => e.size > 0)
  const starts = shardStarts(inTorrent.map(e => ({ path: e.path, length: e.size })), pieceLength)
  const tails = torrentEnds(inTorrent, starts)
  const digests = await digestFiles(opts, files.hashCache, content, pieceLength, started - RACY_MS, tails)
  const entries = scanned.map(e => toManifestEntry(e, digests))
  const manifest = serializeManifest(entries, pieceLength)
  const published = writeOutputs(files, {
    name: opts.name, trackers: opts.trackers, manifest, previous, pieceLength, starts,
    content: inTorrent.map(e => ({ path: e.path, length: e.size, ...digests.byPath.get(e.path)! })),
  })
  const { changed, infoHash, magnet } = published
  if (digests.hashed > 0 || digests.dropped) saveHashCache(files.hashCache, pieceLength, digests.cacheable)
  const result: GenerateResult = {
    repo: opts.name, save: opts.save, changed, infoHash, magnet, pieceLength,
    entries: entries.length, files: content.length, bytes: content.reduce((s, e) => s + e.size, 0),
    hashedFiles: digests.hashed, hashedBytes: digests.hashedBytes, reusedFiles: digests.reused,
    seconds: (Date.now() - started) / 1000, manifestFile: files.manifest, torrentFile: files.torrent,
    shards: published.shards,
  }
  return { result, manifest, piecesOf: path => digests.byPath.get(path)!.pieces }
}

/** gendsync --changed: the previous generation edited where the hint says (hinted.ts). */
async function hintedRun(opts: GenerateOptions, files: RepoFiles, previous: Buffer, changed: string[], started: number): Promise<Run | string> {
  const g = await generateHinted(opts.save, files, previous, changed, { name: opts.name, trackers: opts.trackers }, opts.threads)
  if (typeof g === 'string') return g
  const common = { name: opts.name, trackers: opts.trackers, manifest: g.manifest, previous, pieceLength: g.pieceLength }
  const published = 'shards' in g.torrents
    ? writeShardOutputs(files, { ...common, shards: g.torrents.shards })
    : writeOutputs(files, { ...common, starts: g.torrents.starts, content: g.torrents.content })
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
  return { result, manifest: g.manifest, piecesOf, known: g.sha256 }
}

function readOrUndefined(file: string): Buffer | undefined {
  try {
    return readFileSync(file)
  } catch {
    return undefined
  }
}

interface Digests {
  byPath: Map<string, CachedDigest>
  cacheable: Map<string, CachedDigest>
  hashed: number
  hashedBytes: number
  reused: number
  /** The old cache held entries this run did not keep (files gone or racy). */
  dropped: boolean
}

async function digestFiles(
  opts: GenerateOptions, cacheFile: string, content: ScannedEntry[], pieceLength: number, racyAfterMs: number,
  tails: Set<ScannedEntry>,
): Promise<Digests> {
  const loaded = loadHashCache(cacheFile, pieceLength)
  if (loaded.previousPieceLength !== undefined) {
    opts.onWarning?.(t('gendsync.pieceLengthChanged', { repo: opts.name, from: loaded.previousPieceLength, to: pieceLength }))
  }
  const cache = loaded.entries
  const byPath = new Map<string, CachedDigest>()
  const jobs: HashJob[] = []
  const jobPaths: string[] = []
  const jobCtimes: number[] = []
  let bytesTotal = 0
  const base = join(opts.save, '/')
  // A file that ends a torrent (or a shard) needs its last piece hashed unpadded too; a
  // cached digest without that hash (the file did not end one before) is read again, alone.
  for (const e of content) {
    const old = cache.get(e.path)
    const needsTail = tails.has(e) && e.size % pieceLength !== 0
    if (old && old.size === e.size && old.mtimeMs === e.mtimeMs && old.ctimeMs === e.ctimeMs && old.ino === e.ino && (!needsTail || old.tail)) {
      byPath.set(e.path, old)
    } else {
      jobs.push({ id: jobs.length, path: base + e.path, size: e.size, mtimeMs: e.mtimeMs, ino: e.ino, tail: needsTail })
      jobPaths.push(e.path)
      jobCtimes.push(e.ctimeMs)
      bytesTotal += e.size
    }
  }
  const reused = byPath.size
  const progress = { phase: 'hash' as const, entries: content.length, filesDone: 0, filesTotal: jobs.length, bytesDone: 0, bytesTotal }
  opts.onProgress?.(progress)
  await hashFiles(jobs, pieceLength, (job, d) => {
    byPath.set(jobPaths[job.id], { size: job.size, mtimeMs: job.mtimeMs, ctimeMs: jobCtimes[job.id], ino: job.ino, ...d })
    progress.filesDone++
    progress.bytesDone += job.size
    opts.onProgress?.(progress)
  }, opts.threads)
  const cacheable = new Map<string, CachedDigest>()
  for (const e of content) {
    if (e.mtimeMs <= racyAfterMs) cacheable.set(e.path, byPath.get(e.path)!)
  }
  return { byPath, cacheable, hashed: jobs.length, hashedBytes: bytesTotal, reused, dropped: cacheable.size !== cache.size }
}

/** The files that end a torrent: the last of each shard (of the one torrent, unsharded). */
function torrentEnds(inTorrent: ScannedEntry[], starts: number[]): Set<ScannedEntry> {
  const ends = new Set<ScannedEntry>()
  if (inTorrent.length === 0) return ends
  for (let s = 1; s < starts.length; s++) ends.add(inTorrent[starts[s] - 1])
  ends.add(inTorrent[inTorrent.length - 1])
  return ends
}

function toManifestEntry(e: ScannedEntry, digests: Digests): ManifestEntry {
  const m: ManifestEntry = { type: e.type, path: e.path, mode: e.mode, size: e.size, mtime: e.mtime }
  if (e.type === 'f') m.sha256 = digests.byPath.get(e.path)!.sha256
  if (e.type === 'h') {
    m.sha256 = digests.byPath.get(e.target!)!.sha256
    m.size = digests.byPath.get(e.target!)!.size
  }
  if (e.target !== undefined) m.target = e.target
  return m
}
