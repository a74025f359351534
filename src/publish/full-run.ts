import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Worker } from 'node:worker_threads'
import { DsyncError, ExitCode, fsError } from '../errors.js'
import { t } from '../i18n/index.js'
import { comparePaths } from '../manifest/entry.js'
import { ManifestWriter, resealManifest } from '../manifest/format.js'
import { writeHex } from '../util/digits.js'
import type { DurableBatch } from '../util/durable-batch.js'
import { HashCacheWriter, loadHashCache, type CachedDigest } from '../manifest/hash-cache.js'
import { allocDigests, allocJobs, hashTable, startHashWorkers, WORKERS_ABOVE_FILES, type DigestTables, type TableJobs, type TableProgress } from '../manifest/hash-table.js'
import { encodeShardInfos, sealShards, type PendingShard, type TorrentContent } from '../manifest/outputs.js'
import { lastPieceHashes } from '../manifest/old-pieces.js'
import type { ShardOut } from '../manifest/shard-rebuild.js'
import type { ScannedEntry } from '../manifest/scan.js'
import { pieceLengthFor, piecesOf } from '../torrent/layout.js'
import { costBytes, costTokens, pathHash, shardStartsOf } from '../torrent/shards.js'
import { decimalLength, entryByteLength } from '../torrent/encode-info.js'
import { contentTable, type ContentTable, type TableCosts } from '../manifest/content-table.js'
import { indexLines } from '../manifest/manifest-lines.js'
import type { CachedTables } from '../manifest/table-cache.js'

/**
 * A full gendsync's digests and data.dsync, held as tables indexed by file (the walk's files
 * in data.dsync order, "slots") rather than an object per file: the hash workers write into
 * them in place (hash-table.ts), data.dsync and the hash cache are written from them line by
 * line, the shard torrents take their piece hashes as ranges. docs/SCALE.md ("gendsync at
 * 200,000 files") has the measurements.
 */
export interface FullTables {
  manifest: Buffer
  /** data.dsync's SHA-256 (hex), from the pass that sealed it. */
  sha256: string
  pieceLength: number
  /** Shard starts over `content` (`[0]`: one torrent). */
  starts: number[]
  content: TorrentContent
  /** A sharded repository's shard torrents, encoded while the files were hashed. */
  shards?: ShardOut[]
  /**
   * A sharded repository's content table and costs over `manifest` (what a hinted run starts
   * from: table-cache.ts), made on the way: the shards' encoding indexes the list, the
   * placement costs every file.
   */
  tables?: CachedTables
  files: number
  bytes: number
  hashed: number
  hashedBytes: number
  reused: number
  /** Zero-padded piece hashes of the file at `path` (the delta torrent's files). */
  piecesOf(path: string): Buffer
  /** Adds the hash cache to the batch when it changed (files hashed, or entries dropped). */
  saveCache(batch: DurableBatch, file: string): void
}

export interface FullRunOptions {
  save: string
  name: string
  trackers: string[]
  threads?: number
  hashCache: string
  /** Files modified after this (ms) are not cached (generate.ts, RACY_MS). */
  racyAfterMs: number
  onWarning?: (message: string) => void
  onHashProgress?: (p: { filesDone: number; filesTotal: number; bytesDone: number; bytesTotal: number }) => void
  /** Hash workers already running (the walk's, scan.ts): used, or ended when nothing is left to hash on them. */
  workers?: Worker[]
  /** What the workers put before a path: '' when the working directory is the repository (repo-cwd.ts); default `save` + '/'. */
  openBase?: string
}

/** Hashes what the cache does not hold and writes data.dsync for the walked (sorted) entries. */
export async function fullTables(scanned: ScannedEntry[], opts: FullRunOptions): Promise<FullTables> {
  const files = scanned.filter(e => e.type === 'f')
  // No cache (a first run): every file is read, so the workers start now, while this thread
  // plans, unless the walk's are there already (hashTable ends them if the jobs are few).
  const started = opts.workers ?? (files.length > WORKERS_ABOVE_FILES && !existsSync(opts.hashCache) ? startHashWorkers(opts.threads) : undefined)
  let bytes = 0
  for (const e of files) bytes += e.size
  const pieceLength = pieceLengthFor(bytes)
  const pieceAt = new Float64Array(files.length + 1)
  for (let s = 0; s < files.length; s++) pieceAt[s + 1] = pieceAt[s] + piecesOf(files[s].size, pieceLength) * 20
  const out = allocDigests(files.length, pieceAt)
  const hasTail = new Uint8Array(files.length)
  let plan: ReturnType<typeof planJobs>
  try {
    plan = planJobs(files, out, hasTail, pieceLength, opts)
  } catch (err) {
    await Promise.all(started?.map(w => w.terminate()) ?? [])
    throw err
  }
  // The workers hash on their own; meanwhile this thread places the shards, writes data.dsync
  // (digests still to come as placeholders) and encodes the shard torrents, then fills in
  // what they found. The few files ending a torrent have their last piece read again after.
  const absolute = join(opts.save, '/')
  const hashing = hashTable(plan.jobs, out, pieceLength, plan.progress, opts.threads, started, opts.openBase === '' ? absolute : '')
  let draft: Draft
  let layout: ReturnType<typeof torrentLayout>
  try {
    layout = torrentLayout(files, out, hasTail, pieceLength)
    draft = draftOutputs(scanned, files, out, plan.pending, pieceLength, bytes, layout.content, layout.starts, opts.name, { entry: layout.costs.entry, trackers: opts.trackers })
    if (plan.counts.hashed > 0 || plan.counts.dropped || layout.tailsToRead.length > 0) {
      draft.cache = draftCache(files, draft, out, plan.pending, hasTail, pieceLength, opts.racyAfterMs)
    }
  } catch (err) {
    await hashing.catch(() => undefined)
    throw err
  }
  const { starts, content, costs } = layout
  const manifest = draft.manifest
  const cache = draft.cache
  const fillCache = (s: number) => {
    if (cache && cache.at[s] >= 0) {
      cache.writer.fill(cache.at[s], out.sha256, s * 32, out.pieces, out.pieceAt[s], out.pieceAt[s + 1], hasTail[s] ? out.tails : undefined, s * 20)
    }
  }
  // Each file's digests go into data.dsync and the hash cache as soon as they are in the
  // tables, while the workers hash the rest, rather than all after the last one.
  const jobs = plan.jobs
  let filled = 0
  const fillDone = () => {
    for (; filled < jobs.count && Atomics.load(jobs.done, filled) === 1; filled++) {
      const s = jobs.slot[filled]
      writeHex(manifest, draft.hexAt[s], out.sha256, s * 32, 32)
      fillCache(s)
    }
  }
  await whileHashing(hashing, fillDone)
  readTails(join(opts.save, '/'), files, layout.tailsToRead, out, pieceLength)
  // Their cache lines again, now with the tails (a file hashed now was filled above without).
  for (const s of layout.tailsToRead) fillCache(s)
  for (const [at, s] of draft.links) writeHex(manifest, at, out.sha256, s * 32, 32)
  const sha256 = resealManifest(manifest)
  const shards = draft.shards && sealShards(draft.shards, content, pieceLength, opts.trackers)
  const d = plan.counts
  const slotOf = (path: string) => findSlot(files, path)
  return {
    manifest, sha256, pieceLength, starts, files: files.length, bytes, ...d, content, shards, tables: draft.table && { table: draft.table, costs },
    piecesOf: path => Buffer.from(out.pieces.subarray(pieceAt[slotOf(path)], pieceAt[slotOf(path) + 1])),
    saveCache: (batch, file) => cache?.writer.stage(batch, file),
  }
}

/**
 * How often the main thread takes the digests found so far (whileHashing): at 200k files
 * ~2,000 files a time, ~100 wake-ups in all (each costs ~0.1 ms of CPU on the 2-core test
 * machine under load, measured), and what is left after the last file is ~1 ms of filling.
 */
const FILL_EVERY_MS = 25

/** Runs `step` every FILL_EVERY_MS until `hashing` settles (rejecting as it does), and once after. */
async function whileHashing(hashing: Promise<void>, step: () => void): Promise<void> {
  const timer = setInterval(step, FILL_EVERY_MS)
  try {
    await hashing
  } finally {
    clearInterval(timer)
  }
  step()
}

/**
 * The torrent's content files (size > 0: empty files take no pieces, data.dsync alone
 * recreates them), its shard starts, and the slots of the files that end a torrent without
 * an unpadded last-piece hash yet (marked in hasTail; readTails reads them).
 */
function torrentLayout(files: ScannedEntry[], out: DigestTables, hasTail: Uint8Array, pieceLength: number) {
  const inTorrent = new Int32Array(files.length)
  let n = 0
  for (let s = 0; s < files.length; s++) if (files[s].size > 0) inTorrent[n++] = s
  const torrent = inTorrent.subarray(0, n)
  const costs = costsOf(files, torrent, pieceLength)
  const starts = shardStartsOf(costs)
  const tailsToRead: number[] = []
  for (const s of endsOfTorrents(torrent, starts)) {
    if (files[s].size % pieceLength === 0 || hasTail[s]) continue
    hasTail[s] = 1
    tailsToRead.push(s)
  }
  return { starts, content: tableContent(files, torrent, out, hasTail), tailsToRead, costs }
}

/**
 * shardStarts' inputs for the torrent's files (fileCost and pathHash of each), and each one's
 * entry bytes in a files list: the numbers tableCosts (content-table.ts) reads from data.dsync's
 * bytes, from the paths in hand (the caches a full run leaves take them: no pass over the list).
 */
function costsOf(files: ScannedEntry[], torrent: Int32Array, pieceLength: number): TableCosts {
  const n = torrent.length
  const costs: TableCosts = { bytes: new Float64Array(n), tokens: new Float64Array(n), hash: new Uint32Array(n), entry: new Float64Array(n) }
  for (let i = 0; i < n; i++) {
    const e = files[torrent[i]]
    const path = e.path
    let slashes = 0
    let ascii = true
    // entryByteLength's sum per segment (decimal length, ':', bytes), for an ASCII path (one byte a unit).
    let segments = 0
    let seg = 0
    for (let k = 0; k < path.length; k++) {
      const u = path.charCodeAt(k)
      if (u === 0x2f) {
        slashes++
        segments += decimalLength(k - seg) + 1 + (k - seg)
        seg = k + 1
      } else if (u > 0x7f) ascii = false
    }
    costs.bytes[i] = costBytes(Buffer.byteLength(path), slashes, e.size, pieceLength)
    costs.tokens[i] = costTokens(slashes, e.size, pieceLength)
    costs.hash[i] = pathHash(path)
    if (ascii) costs.entry[i] = 20 + decimalLength(e.size) + segments + decimalLength(path.length - seg) + 1 + (path.length - seg)
    else {
      const bytes = Buffer.from(path, 'utf8')
      costs.entry[i] = entryByteLength(bytes, 0, bytes.length, e.size)
    }
  }
  return costs
}

/**
 * The unpadded last-piece hash of each file in `slots` (files ending a torrent), from one
 * read of that piece. Its padded hash must be the one the workers found, so the bytes are
 * those hashed: a file changed since is refused as the workers refuse it.
 */
function readTails(base: string, files: ScannedEntry[], slots: number[], out: DigestTables, pieceLength: number): void {
  for (const s of slots) {
    const path = base + files[s].path
    let last
    try {
      last = lastPieceHashes(path, files[s].size, pieceLength)
    } catch (err) {
      throw fsError(err, path, 'read')
    }
    const end = out.pieceAt[s + 1]
    if (!last || !last.padded.equals(out.pieces.subarray(end - 20, end))) {
      throw new DsyncError(ExitCode.io, 'scan.changedWhileHashing', { path })
    }
    out.tails.set(last.tail, s * 20)
  }
}

/** Slots of the files that end a torrent (the last of each shard, of the one torrent unsharded). */
function endsOfTorrents(torrent: Int32Array, starts: number[]): Set<number> {
  const ends = new Set<number>()
  if (torrent.length === 0) return ends
  for (let s = 1; s < starts.length; s++) ends.add(torrent[starts[s] - 1])
  ends.add(torrent[torrent.length - 1])
  return ends
}

interface SlotDigests {
  hashed: number
  hashedBytes: number
  reused: number
  /** The old cache held entries this run does not keep (files gone or racy). */
  dropped: boolean
}

/**
 * Fills `out` for every file the hash cache holds (size, mtime, ctime and inode match); the
 * rest become jobs. No job asks for a tail hash: the shards are placed while the workers
 * hash, and readTails reads the last piece of the few files that end one.
 */
function planJobs(
  files: ScannedEntry[], out: DigestTables, hasTail: Uint8Array, pieceLength: number, opts: FullRunOptions,
): { jobs: TableJobs; pending: Uint8Array; counts: SlotDigests; progress: (p: TableProgress) => void } {
  const loaded = loadHashCache(opts.hashCache, pieceLength)
  if (loaded.previousPieceLength !== undefined) {
    opts.onWarning?.(t('gendsync.pieceLengthChanged', { repo: opts.name, from: loaded.previousPieceLength, to: pieceLength }))
  }
  const cache = loaded.entries
  const base = opts.openBase ?? join(opts.save, '/')
  const baseBytes = Buffer.byteLength(base)
  const todo: number[] = []
  let pathBytes = 0
  let bytesTotal = 0
  let cacheable = 0
  for (let s = 0; s < files.length; s++) {
    const e = files[s]
    if (e.mtimeMs <= opts.racyAfterMs) cacheable++
    const old = cache.size > 0 ? cache.get(e.path) : undefined
    if (old && old.size === e.size && old.mtimeMs === e.mtimeMs && old.ctimeMs === e.ctimeMs && old.ino === e.ino) {
      copyCached(old, s, out, hasTail)
      continue
    }
    todo.push(s)
    pathBytes += baseBytes + Buffer.byteLength(e.path)
    bytesTotal += e.size
  }
  const pending = new Uint8Array(files.length)
  for (const s of todo) pending[s] = 1
  const jobs = allocJobs(todo.length, pathBytes)
  const paths = Buffer.from(jobs.paths.buffer, jobs.paths.byteOffset, jobs.paths.byteLength)
  let at = 0
  todo.forEach((s, j) => {
    const e = files[s]
    jobs.pathAt[j] = at
    at += paths.write(base, at)
    at += paths.write(e.path, at)
    jobs.size[j] = e.size
    jobs.mtimeMs[j] = e.mtimeMs
    jobs.ino[j] = e.ino
    jobs.slot[j] = s
    jobs.tail[j] = 0
  })
  jobs.pathAt[todo.length] = at
  const progress = (p: TableProgress) => opts.onHashProgress?.({ ...p, filesTotal: todo.length, bytesTotal })
  progress({ filesDone: 0, bytesDone: 0 })
  const counts = { hashed: todo.length, hashedBytes: bytesTotal, reused: files.length - todo.length, dropped: cacheable !== cache.size }
  return { jobs, pending, counts, progress }
}

function copyCached(old: CachedDigest, s: number, out: DigestTables, hasTail: Uint8Array): void {
  out.sha256.set(old.sha256, s * 32)
  out.pieces.set(old.pieces, out.pieceAt[s])
  if (old.tail) {
    out.tails.set(old.tail, s * 20)
    hasTail[s] = 1
  }
}

interface Draft {
  /** data.dsync with the SHA-256s known so far (the hash cache's); the END line is sealed later. */
  manifest: Buffer
  /** Where each file's hex digits are in it, and each hardlink's (offset, its file's slot). */
  hexAt: Float64Array
  links: [number, number][]
  shards?: PendingShard[]
  /** The content table the shards were encoded from (sharded only). */
  table?: ContentTable
  /** The hash cache, when it is to be written: its lines, and where each file's digests are in it (-1: not cached). */
  cache?: { writer: HashCacheWriter; at: Float64Array }
}

/**
 * The hash cache's size, or a little more (its line: ino, size, mtimeMs and ctimeMs, up to 24
 * characters each, 64 + 40 hex digits, the pieces in base64, the path as ASCII, tabs);
 * see manifestBytesAbout for why (files * 160 + pieces was 37.3 MB for 39.2 MB at 200k files).
 */
function cacheBytesAbout(files: ScannedEntry[], pieceAt: Float64Array, racyAfterMs: number): number {
  let bytes = 4096
  let longest = 0
  let piecesBytes = 0
  for (let s = 0; s < files.length; s++) {
    if (files[s].mtimeMs > racyAfterMs) continue
    const n = files[s].path.length
    bytes += 210 + n + 4 * Math.ceil((pieceAt[s + 1] - pieceAt[s]) / 3)
    piecesBytes = Math.max(piecesBytes, pieceAt[s + 1] - pieceAt[s])
    if (n > longest) longest = n
  }
  return bytes + 3 * longest + 4 * Math.ceil(piecesBytes / 3) + 512
}

/** The hash cache's lines for the files not modified too recently (generate.ts, RACY_MS), digests as they are now. */
function draftCache(
  files: ScannedEntry[], draft: Draft, out: DigestTables, pending: Uint8Array, hasTail: Uint8Array, pieceLength: number, racyAfterMs: number,
): Draft['cache'] {
  const pieceAt = out.pieceAt
  const m = draft.manifest
  const writer = new HashCacheWriter(pieceLength, cacheBytesAbout(files, pieceAt, racyAfterMs))
  const at = new Float64Array(files.length).fill(-1)
  for (let s = 0; s < files.length; s++) {
    const e = files[s]
    if (e.mtimeMs > racyAfterMs) continue
    // data.dsync's path field, escaped as the cache writes it: after the hex digits and a tab.
    const pathAt = draft.hexAt[s] + 65
    const path = m.subarray(pathAt, m.indexOf(0x0a, pathAt))
    at[s] = writer.line(path, e, out.sha256, pending[s] ? -1 : s * 32, out.pieces, pieceAt[s], pieceAt[s + 1], hasTail[s] ? out.tails : undefined, s * 20)
  }
  return { writer, at }
}

/**
 * data.dsync's size, or a little more, for ASCII paths without escapes (the usual; others grow
 * the buffer): a line is at most ~95 bytes besides its paths (type, mode, a size and an mtime
 * of up to 16 digits, 64 hex digits, tabs), plus what ManifestWriter.line's reserve asks beyond
 * the last line. A guess below the size (140 a line was 28 MB for 30.3 MB at 200k files) grows
 * the buffer at the end: a copy into a fresh one twice the size, pages this VM charges ~5-15 us
 * each to touch (docs/SCALE.md, session 24); one above it is only address space.
 */
function manifestBytesAbout(scanned: ScannedEntry[]): number {
  let bytes = 4096
  let longest = 0
  for (const e of scanned) {
    const n = e.path.length + (e.target?.length ?? 0)
    bytes += 100 + n
    if (n > longest) longest = n
  }
  return bytes + 3 * longest + 256
}

/** data.dsync for the walked entries (a hardlink takes its file's size and SHA-256), and the shard info dicts. */
function draftOutputs(
  scanned: ScannedEntry[], files: ScannedEntry[], out: DigestTables, pending: Uint8Array, pieceLength: number, bytes: number,
  content: TorrentContent, starts: number[], name: string, whole: { entry: Float64Array; trackers: string[] },
): Draft {
  const w = new ManifestWriter({ version: 1, pieceLength, entries: scanned.length, files: files.length, bytes }, manifestBytesAbout(scanned))
  const hexAt = new Float64Array(files.length)
  const links: [number, number][] = []
  // Hardlinked files' slots by path (only files with more than one link can be a target).
  const linked = new Map<string, number>()
  let s = 0
  for (const e of scanned) {
    if (e.type === 'f') {
      if (e.nlink > 1) linked.set(e.path, s)
      hexAt[s] = w.line('f', e.mode, e.size, e.mtime, out.sha256, pending[s] ? -1 : 32 * s, e.path)
      s++
    } else if (e.type === 'h') {
      const target = linked.get(e.target!)!
      links.push([w.line('h', e.mode, files[target].size, e.mtime, out.sha256, pending[target] ? -1 : 32 * target, e.path, e.target), target])
    } else {
      w.line(e.type, e.mode, e.size, e.mtime, undefined, 0, e.path, e.target)
    }
  }
  // Sealed once its digests are all in (resealManifest, fullTables).
  const manifest = w.finish(false)
  if (starts.length === 1) return { manifest, hexAt, links }
  // Its rows point into `manifest`, whose digits are filled in place later: they stay right.
  const lines = indexLines(manifest)
  const table = typeof lines === 'string' ? undefined : contentTable(lines)
  const shards = table && encodeShardInfos(name, pieceLength, manifest, content, starts, table, whole)
  return { manifest, hexAt, links, shards, table: shards && table }
}

/** The torrent's content files as TorrentContent over the tables (torrent[i]: the slot of file i). */
function tableContent(files: ScannedEntry[], torrent: Int32Array, out: DigestTables, hasTail: Uint8Array): TorrentContent {
  const c: TorrentContent = {
    count: torrent.length,
    length: i => files[torrent[i]].size,
    pieces: (first, end) => Buffer.from(out.pieces.subarray(out.pieceAt[torrent[first]], out.pieceAt[torrent[end - 1] + 1])),
    tail: i => (hasTail[torrent[i]] ? Buffer.from(out.tails.subarray(torrent[i] * 20, torrent[i] * 20 + 20)) : undefined),
    list: () => Array.from(torrent, (s, i) => ({ path: files[s].path, length: files[s].size, pieces: c.pieces(i, i + 1), tail: c.tail(i) })),
  }
  return c
}

/** The slot of the file at `path` (files are in data.dsync order); throws when there is none. */
function findSlot(files: ScannedEntry[], path: string): number {
  let lo = 0
  let hi = files.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    const c = comparePaths(files[mid].path, path)
    if (c === 0) return mid
    if (c < 0) lo = mid + 1
    else hi = mid - 1
  }
  throw new Error(`the delta names ${path}, which this run has no digest for`)
}
