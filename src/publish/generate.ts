import { mkdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fsError } from '../errors.js'
import { t } from '../i18n/index.js'
import { buildTorrent, magnetLink } from '../torrent/build.js'
import { layoutFiles, pieceLengthFor } from '../torrent/layout.js'
import { writeFileAtomic } from '../util/atomic-write.js'
import { acquireLock } from '../util/lock.js'
import type { PublisherKey } from '../generation/keys.js'
import { DEFAULT_KEEP_DELTAS, publishGeneration } from '../generation/publish.js'
import type { ManifestEntry } from '../manifest/entry.js'
import { serializeManifest } from '../manifest/format.js'
import { loadHashCache, saveHashCache, type CachedDigest } from '../manifest/hash-cache.js'
import { hashBuffer } from '../manifest/hash-file.js'
import { hashFiles, type HashJob } from '../manifest/hash-pool.js'
import { DSYNC_DIR, MANIFEST_TORRENT_PATH, repoFiles } from '../manifest/paths.js'
import { scanTree, type ScannedEntry } from '../manifest/scan.js'

export interface GenerateOptions {
  name: string
  save: string
  trackers: string[]
  onProgress?: (p: GenerateProgress) => void
  onWarning?: (message: string) => void
  threads?: number
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
  /** The signed generation record: its sequence number, and whether this run signed it. */
  record?: { seq: number; signed: boolean; deltas: number }
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
    const scanned = scanTree(opts.save, {
      excludeTop: [DSYNC_DIR],
      onWarning: opts.onWarning,
      onEntry: n => opts.onProgress?.({ phase: 'scan', entries: n, filesDone: 0, filesTotal: 0, bytesDone: 0, bytesTotal: 0 }),
    })
    const content = scanned.filter(e => e.type === 'f')
    const pieceLength = pieceLengthFor(content.reduce((sum, e) => sum + e.size, 0))
    const digests = await digestFiles(opts, files.hashCache, content, pieceLength, started - RACY_MS)
    const entries = scanned.map(e => toManifestEntry(e, digests))
    const manifest = serializeManifest(entries, pieceLength)
    const previousManifest = readOrUndefined(files.manifest)
    // The torrent is a function of data.dsync, the name and the trackers; the magnet link
    // names all three. Same data.dsync and same magnet: the torrent on disk is this one.
    const unchangedHash = sameBytes(files.manifest, manifest) ? unchangedInfoHash(files, opts) : undefined
    const { torrent, infoHash } = unchangedHash ? { torrent: undefined, infoHash: unchangedHash } : torrentFor(opts, manifest, content, digests.byPath, pieceLength)
    const magnet = magnetLink(infoHash, opts.name, opts.trackers)
    const changed = torrent !== undefined && (!sameBytes(files.manifest, manifest) || !sameBytes(files.torrent, torrent) || !sameBytes(files.magnet, magnet + '\n'))
    if (changed && torrent) {
      // data.dsync first: a host that reloads between the renames finds a torrent that does
      // not match and keeps the previous generation until the torrent lands.
      writeFileAtomic(files.manifest, manifest)
      writeFileAtomic(files.torrent, torrent)
      writeFileAtomic(files.magnet, magnet + '\n')
    }
    if (digests.hashed > 0 || digests.dropped) saveHashCache(files.hashCache, pieceLength, digests.cacheable)
    const published = opts.key && publishGeneration({
      repo: opts.name, save: opts.save, trackers: opts.trackers, key: opts.key, keepDeltas: opts.keepDeltas ?? DEFAULT_KEEP_DELTAS,
      previous: previousManifest, manifest, infoHash, shards: [], piecesOf: path => digests.byPath.get(path)!.pieces,
    })
    return {
      repo: opts.name, save: opts.save, changed, infoHash, magnet, pieceLength,
      entries: entries.length, files: content.length, bytes: content.reduce((s, e) => s + e.size, 0),
      hashedFiles: digests.hashed, hashedBytes: digests.hashedBytes, reusedFiles: digests.reused,
      seconds: (Date.now() - started) / 1000, manifestFile: files.manifest, torrentFile: files.torrent,
      record: published ? { seq: published.record.seq, signed: published.signed, deltas: published.record.deltas.length } : undefined,
    }
  } finally {
    lock.release()
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
  // The file that ends the torrent needs its last piece hashed unpadded too; a cached
  // digest without that hash (the file was not last before) is read again, alone.
  const last = lastInTorrent(content)
  for (const e of content) {
    const old = cache.get(e.path)
    const needsTail = e === last && e.size % pieceLength !== 0
    if (old && old.size === e.size && old.mtimeMs === e.mtimeMs && old.ctimeMs === e.ctimeMs && old.ino === e.ino && (!needsTail || old.tail)) {
      byPath.set(e.path, old)
    } else {
      jobs.push({ id: jobs.length, path: join(opts.save, e.path), size: e.size, mtimeMs: e.mtimeMs, ino: e.ino, tail: needsTail })
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

function lastInTorrent(content: ScannedEntry[]): ScannedEntry | undefined {
  for (let i = content.length - 1; i >= 0; i--) if (content[i].size > 0) return content[i]
  return undefined
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

function torrentFor(
  opts: GenerateOptions, manifest: Buffer, content: ScannedEntry[], byPath: Map<string, CachedDigest>, pieceLength: number,
) {
  // Empty files take no pieces; data.dsync alone recreates them.
  const inTorrent = content.filter(e => e.size > 0)
  const layout = layoutFiles(
    [{ path: MANIFEST_TORRENT_PATH, length: manifest.length }, ...inTorrent.map(e => ({ path: e.path, length: e.size }))],
    pieceLength,
  )
  const digests = [hashBuffer(manifest, pieceLength), ...inTorrent.map(e => byPath.get(e.path)!)]
  const pieces = Buffer.concat(digests.map(d => d.pieces))
  // The torrent's final piece is short, not padded: it takes the unpadded hash.
  const last = digests[digests.length - 1]
  if (last.tail) last.tail.copy(pieces, pieces.length - 20)
  return buildTorrent({ name: opts.name, pieceLength, files: layout, pieces, trackers: opts.trackers })
}

/** The infohash in the existing magnet link, if that link is exactly what these options make. */
function unchangedInfoHash(files: ReturnType<typeof repoFiles>, opts: GenerateOptions): string | undefined {
  try {
    const text = readFileSync(files.magnet, 'utf8')
    const hash = /^magnet:\?xt=urn:btih:([0-9a-f]{40})&/.exec(text)?.[1]
    if (!hash || text !== magnetLink(hash, opts.name, opts.trackers) + '\n') return undefined
    return statSync(files.torrent).size > 0 ? hash : undefined
  } catch {
    return undefined
  }
}

function readOrUndefined(file: string): Buffer | undefined {
  try {
    return readFileSync(file)
  } catch {
    return undefined
  }
}

function sameBytes(file: string, data: Buffer | string): boolean {
  try {
    const old = readFileSync(file)
    return old.equals(typeof data === 'string' ? Buffer.from(data) : data)
  } catch {
    return false
  }
}
