import { createHash } from 'node:crypto'
import { lstatSync, readFileSync, type Stats } from 'node:fs'
import { join } from 'node:path'
import { pieceLengthFor } from '../torrent/layout.js'
import { readTorrentInfo, type TorrentInfo } from '../torrent/read.js'
import { indexedShards, shardInfoHashOf, shardStarts, shardStartsOf, type HashedPart, type ShardFileDigest } from '../torrent/shards.js'
import { contentPathString, contentTable, tableCosts, type ContentTable } from './content-table.js'
import type { ManifestEntry } from './entry.js'
import { MAGIC, VERSION, formatEntry } from './format.js'
import type { FileDigest } from './hash-file.js'
import { pieceHashes, pieceHashesReusing } from '../torrent/piece-hashes.js'
import { hashFiles, type HashJob } from './hash-pool.js'
import { readLinesFile, readListLines } from './line-cache.js'
import { comparePathAt, entryAt, lowerBound, type LineTable, type ManifestLines } from './manifest-lines.js'
import { lastPieceHashes, oldPieces } from './old-pieces.js'
import { MANIFEST_TORRENT_PATH, type RepoFiles } from './paths.js'
import { fromStats, readLinkTarget, scanTree, type ScannedEntry } from './scan.js'
import { rebuildShards, type ShardOut } from './shard-rebuild.js'
import { loadTables, type CachedTables } from './table-cache.js'
import { newArray, type WarmMemory } from './warm-memory.js'
import { shardSizes, unchangedOutputs, type UnchangedOutputs } from './outputs.js'
import { prefetchFiles } from '../util/prefetch.js'

/**
 * gendsync with a change hint: the previous data.dsync is edited where the hint says the
 * tree changed (each named path and its parent folders lstat'ed again, new folders walked,
 * vanished ones dropped with everything under them), only the named files are read, and
 * the torrents are rebuilt from the previous torrents' piece hashes. Given a complete hint
 * the outputs are byte-identical to a full run's (test/gendsync-hint.test.ts checks that).
 * Returns a reason instead when only a full run can be right (no previous generation,
 * hardlinks, a piece length change, torrents that do not match).
 */
export interface HintedGeneration {
  manifest: Buffer
  pieceLength: number
  /**
   * The torrents: one (content digests, for writeOutputs), or shards built or kept (shard-rebuild.ts),
   * or, when the list did not change and the previous outputs on disk check out, those outputs as they are.
   */
  torrents: { content: ShardFileDigest[]; starts: number[] } | { shards: ShardOut[]; listPieces?: HashedPart } | { unchanged: UnchangedOutputs }
  entries: number
  files: number
  bytes: number
  /** Files read, for the hash cache and the summary. */
  hashed: { path: string; entry: ScannedEntry; digest: FileDigest }[]
  /** SHA-256 of the new data.dsync and of the previous one, as the record names them. */
  sha256: { manifest: string; previous: string }
  /** Line offsets of the previous data.dsync and of the new one (the record step's delta uses them). */
  lines: { old: LineTable; new: LineTable }
  /** The new list's content table and costs (sharded only): what the next hinted run starts from (table-cache.ts). */
  tables?: CachedTables
}

type Target = ScannedEntry | null

/** What the torrents are named and announce (the repository's name and trackers). */
export interface TorrentNaming {
  name: string
  trackers: string[]
}

/** Where each output goes as soon as it is made (EarlyOutputs in outputs.ts), before the run is done. */
export interface HintedStaging {
  manifest(manifest: Buffer): void
  shard(shard: ShardOut): void
}

export async function generateHinted(
  save: string, files: RepoFiles, previous: Buffer, changed: string[], naming: TorrentNaming, threads?: number, stage?: HintedStaging,
  earlier: { torrent?: Buffer; tables?: Buffer; lines?: Buffer; memory?: WarmMemory } = {},
): Promise<HintedGeneration | string> {
  const { index, early } = prefetchPrevious(files, earlier)
  let old: ManifestLines
  try {
    old = readListLines(previous, files.manifest, earlier.lines ?? readLinesFile(files))
  } catch {
    return 'no readable previous data.dsync'
  }
  if (old.buf.includes('\nh\t')) return 'the tree has hardlinks'
  const found = collectChanges(save, old, changed)
  if (typeof found === 'string') return found
  const jobs: HashJob[] = []
  const jobEntries: ScannedEntry[] = []
  for (const e of found.targets.values()) {
    if (e?.type !== 'f') continue
    jobs.push({ id: jobs.length, path: join(save, e.path), size: e.size, mtimeMs: e.mtimeMs, ino: e.ino, tail: true })
    jobEntries.push(e)
  }
  const hashed: HintedGeneration['hashed'] = []
  await hashFiles(jobs, old.pieceLength, (job, digest) => hashed.push({ path: jobEntries[job.id].path, entry: jobEntries[job.id], digest }), threads)
  const digests = new Map(hashed.map(h => [h.path, h.digest]))
  const same = unchangedGeneration(files, naming, old, found, digests, index, early, earlier)
  if (same) return { ...same, hashed }
  // The new list is about the previous one's size: its warmed memory is waited for, not made again
  // (not when the list is too big for it: 1M files).
  await earlier.memory?.ready(old.buf.length + (old.buf.length >> 5))
  const spliced = splice(old, found, digests, earlier.memory)
  if (pieceLengthFor(spliced.bytes) !== old.pieceLength) return 'the piece length changes'
  stage?.manifest(spliced.manifest)
  const [prefetched] = await Promise.all([early, earlier.memory?.settled])
  const built = newTorrents(save, files, naming, old, index, spliced.lines, spliced.runs, digests, prefetched, stage, earlier.memory)
  if (typeof built === 'string') return built
  const { torrents, tables } = built
  const { manifest, entries, files: fileCount, bytes } = spliced
  return {
    manifest, entries, files: fileCount, bytes, pieceLength: old.pieceLength, torrents, tables, hashed,
    sha256: { manifest: spliced.sha256, previous: old.fileSha256 },
    lines: { old: { buf: old.buf, bodyAt: old.buf.indexOf('\n\n'), endAt: old.starts[old.count] - 1, starts: old.starts, count: old.count }, new: spliced.lines },
  }
}

/**
 * The hinted run when its list is the previous one (an empty hint, or every named path as it
 * was): no splice, no torrents rebuilt, nothing written, when the previous outputs on disk are
 * that list's (unchangedOutputs: the magnet, the index torrent and each shard file checked by
 * SHA-1, as a full run that finds nothing changed checks them). An empty hint then cost 0.32-0.40 s
 * in process at 200k files, most of it rebuilding and checking all 16 shards and rewriting the
 * 10.5 MB of caches for the same list (docs/ARCHITECTURE.md, session 25, g25b). Undefined: the list
 * changed, or the outputs do not check out (rebuilt as on any hinted run).
 */
function unchangedGeneration(
  files: RepoFiles, naming: TorrentNaming, old: ManifestLines, found: Changes, digests: Map<string, FileDigest>, index: PreviousIndex,
  early: Promise<Map<string, Buffer>>, earlier: { tables?: Buffer },
): HintedGeneration | undefined {
  // Nothing named: the list is the previous one without looking; else the named paths' lines as they are now, against the previous lines.
  if (found.removedTrees.length > 0) return undefined
  for (const [path, now] of found.targets) {
    const at = found.at.get(path)
    if (!now || at === undefined || at >= old.count || comparePathAt(old, at, Buffer.from(path, 'utf8')) !== 0) return undefined
    const line = formatEntry(toEntry(now, digests))
    if (old.buf.toString('utf8', old.starts[at], old.starts[at + 1] - 1) !== line) return undefined
  }
  const P = old.pieceLength
  const cached = loadTables(files.tables, old, old.fileSha256, P, earlier.tables)
  const table = cached?.table ?? contentTable(old)
  const starts = shardStartsOf(cached?.costs ?? tableCosts(table, P))
  const expect = starts.length === 1 || typeof index === 'string' ? undefined : shardSizes({ count: table.count, length: c => table.length[c] }, starts)
  const unchanged = unchangedOutputs(files, naming, expect)
  if (!unchanged) return undefined
  // Prefetched shard files are not waited for (unchangedOutputs read what it checked).
  early.catch(() => {})
  const lines: LineTable = { buf: old.buf, bodyAt: old.buf.indexOf('\n\n'), endAt: old.starts[old.count] - 1, starts: old.starts, count: old.count }
  return {
    manifest: old.buf, entries: old.entries, files: old.files, bytes: old.bytes, pieceLength: P, torrents: { unchanged }, hashed: [],
    sha256: { manifest: old.fileSha256, previous: old.fileSha256 }, lines: { old: lines, new: lines },
  }
}

/**
 * The new generation's torrents. Sharded before and after (the case at mirror scale): shards
 * rebuilt only where their files changed (shard-rebuild.ts), everything read from data.dsync's
 * bytes and the previous torrents' bytes, no object per file. Otherwise (a repository of one
 * torrent, at most 32,768 files, or one crossing that line) a content list with digests.
 */
function newTorrents(
  save: string, files: RepoFiles, naming: TorrentNaming, old: ManifestLines, index: PreviousIndex, next: LineTable, runs: Run[], digests: Map<string, FileDigest>,
  prefetched: Map<string, Buffer>, stage?: HintedStaging, memory?: WarmMemory,
): { torrents: HintedGeneration['torrents']; tables?: CachedTables } | string {
  const P = old.pieceLength
  // The previous hinted run's tables for this very list, when it left them (else one pass over it each).
  const cached = loadTables(files.tables, old, old.fileSha256, P, prefetched.get(files.tables))
  const oldTable = cached?.table ?? contentTable(old)
  const { table: nextTable, origin, keptUntil } = nextContentTable(oldTable, next, runs, memory)
  const oldCosts = cached?.costs ?? tableCosts(oldTable, P)
  const nextCosts = tableCosts(nextTable, P, { costs: oldCosts, origin }, memory)
  const starts = shardStartsOf(nextCosts)
  const previous = previousShards(files, old, index)
  if (starts.length === 1 || typeof previous === 'string') {
    const content: ContentChange[] = []
    for (let c = 0; c < nextTable.count; c++) content.push({ path: contentPathString(nextTable, c), length: nextTable.length[c], changed: origin[c] < 0 })
    const torrents = reuseDigests(save, files, content, digests, P)
    return typeof torrents === 'string' ? torrents : { torrents }
  }
  const trusted = magnetNames(files, previous.infoHash)
  // Each shard staged as it is made (its bytes kept here: with onShard the list returned holds none).
  const made: ShardOut[] = []
  const shards = rebuildShards({
    save, shardsDir: files.shards, name: naming.name, trackers: naming.trackers, pieceLength: P, next: nextTable, starts, origin, keptUntil,
    old: oldTable, oldStarts: shardStartsOf(oldCosts), oldEntry: oldCosts.entry, nextEntry: nextCosts.entry, oldShards: previous.shards, digests,
    oldIndex: trusted ? { pieces: previous.pieces, firstPiece: previous.firstPiece, length: previous.lengths } : undefined, prefetched, memory,
    onShard: stage && (shard => {
      made.push(shard)
      stage.shard(shard)
    }),
  })
  if (typeof shards === 'string') return shards
  return { torrents: { shards: stage ? made : shards, listPieces: trusted ? listPieces(old, previous, next.buf) : undefined }, tables: { table: nextTable, costs: nextCosts } }
}

/** Shard files read ahead at most (at 1M files they are ~150 MB; a hinted run holds ~3 at a time). */
const PREFETCH_SHARD_BYTES = 64 << 20

/**
 * The previous tables and shard files (the first PREFETCH_SHARD_BYTES of them, in the index's
 * order, the order the splice reads them in), read on libuv's threads while the main thread
 * reads and edits the list: ~40 MB at 200k files, that the splice no longer reads itself. The
 * index torrent is parsed here once (previousShards takes it). Nothing here is trusted yet:
 * what is used is checked where it is used, as if read there. `earlier`: bytes read already
 * (the CLI's read-ahead, src/publish/read-ahead.ts).
 */
function prefetchPrevious(files: RepoFiles, earlier: { torrent?: Buffer; tables?: Buffer }): { index: PreviousIndex; early: Promise<Map<string, Buffer>> } {
  const paths = earlier.tables ? [] : [files.tables]
  let index: PreviousIndex
  try {
    index = readTorrentInfo(earlier.torrent ?? readFileSync(files.torrent))
    let bytes = 0
    for (const f of index.files.slice(1)) {
      const infoHash = shardInfoHashOf(f.path)
      if (f.pad || !infoHash || (bytes += f.length) > PREFETCH_SHARD_BYTES) continue
      paths.push(join(files.shards, `${infoHash}.torrent`))
    }
  } catch {
    // No previous index to read: previousShards says so later.
    index = 'the previous torrent cannot be read'
  }
  const early = prefetchFiles(paths).then(got => {
    if (earlier.tables) got.set(files.tables, earlier.tables)
    return got
  })
  return { index, early }
}

/** The previous index torrent, parsed, or why it could not be. */
type PreviousIndex = TorrentInfo | string

/**
 * The previous index torrent's shard list, when it is the index of the previous data.dsync:
 * same length, and the same hash for the piece holding its END line (that line's SHA-256
 * covers every byte before it). A reason otherwise (one torrent, or gendsync stopped between
 * writing data.dsync and the index).
 */
export function previousShards(files: RepoFiles, old: ManifestLines, index?: PreviousIndex): IndexedShards | string {
  return shardsIndexing(files, { size: old.buf.length, pieceLength: old.pieceLength, tail: from => old.buf.subarray(from) }, index)
}

/** `END\t<64 hex digits>\n`: the last line of a data.dsync, whose checksum covers every line before it. */
const END_LINE_BYTES = 'END\t'.length + 64 + 1

/**
 * The first piece that holds a byte of the END line: that piece to the last one, equal to the
 * previous index's, prove the list is the one it indexes (the END line may straddle two pieces;
 * comparing only the last piece would pass a list whose last piece is its final newline).
 */
export function endPieces(size: number, pieceLength: number): { first: number; from: number } {
  const first = Math.floor(Math.max(0, size - END_LINE_BYTES) / pieceLength)
  return { first, from: first * pieceLength }
}

/**
 * previousShards for a list known by its size, piece length and its bytes from offset `from` to
 * the end (endPieces; the client keeps DEST's previous list on disk, not in memory:
 * src/sync/old-side.ts).
 */
export function shardsIndexing(
  files: RepoFiles, list: { size: number; pieceLength: number; tail: (from: number) => Buffer | undefined }, index?: PreviousIndex,
): IndexedShards | string {
  let info
  try {
    info = index ?? readTorrentInfo(readFileSync(files.torrent))
  } catch {
    return 'the previous torrent cannot be read'
  }
  if (typeof info === 'string') return info
  const shards = indexedShards(info.files)
  if (!shards) return 'the previous generation is one torrent'
  const P = info.pieceLength
  if (info.files[0]?.path !== MANIFEST_TORRENT_PATH || info.files[0].length !== list.size || P !== list.pieceLength) {
    return 'the previous index torrent does not match data.dsync'
  }
  const lastPiece = Math.ceil(list.size / P) - 1
  const { first, from } = endPieces(list.size, P)
  const tail = list.tail(from)
  const padded = tail && pieceHashes(tail, P, false).pieces
  if (!padded?.equals(info.pieces.subarray(first * 20, lastPiece * 20 + 20))) return 'the previous index torrent does not match data.dsync'
  const firstPiece: number[] = []
  const lengths: number[] = []
  let at = 0
  for (let i = 0; i < info.files.length; i++) {
    const f = info.files[i]
    if (i > 0 && !f.pad) {
      firstPiece.push(at % P === 0 ? at / P : -1)
      lengths.push(f.length)
    }
    at += f.length
  }
  return { shards, infoHash: info.infoHash, listPieces: info.pieces.subarray(0, (lastPiece + 1) * 20), pieces: info.pieces, firstPiece, lengths }
}

/** The previous index torrent: its shards in order, its infohash, and the piece hashes of the list (data.dsync) it holds first. */
export interface IndexedShards {
  shards: string[]
  infoHash: string
  listPieces: Buffer
  /** All its piece hashes, and each shard file's first piece in them (-1: not on a piece boundary) and length, in order. */
  pieces: Buffer
  firstPiece: number[]
  lengths: number[]
}

/**
 * data.dsync's piece hashes for the new index torrent, the previous index's kept where the new
 * list's piece is byte for byte the previous one's (pieceHashesReusing). Only when that index is
 * the one the magnet link names (magnetNames: its infohash covers those hashes, a damaged file is
 * not copied from); otherwise the index hashes the whole list.
 */
function listPieces(old: ManifestLines, previous: IndexedShards, next: Buffer): HashedPart {
  return { length: next.length, ...pieceHashesReusing(next, { data: old.buf, pieces: previous.listPieces }, old.pieceLength, false) }
}

/** Whether the magnet link names this infohash (the previous index's: then its piece hashes are the ones published). */
function magnetNames(files: RepoFiles, infoHash: string): boolean {
  try {
    return readFileSync(files.magnet, 'latin1').startsWith(`magnet:?xt=urn:btih:${infoHash}&`)
  } catch {
    return false
  }
}

interface Changes {
  /** Path -> what it is now (null: gone), for every path to rewrite, sorted by UTF-8 bytes. */
  targets: Map<string, Target>
  /** Old folders gone or replaced: every line under them goes. */
  removedTrees: string[]
  /** Where each path looked up was found in the previous list, or would go (lowerBound): editsOf does not search again. */
  at: Map<string, number>
}

function collectChanges(save: string, old: ManifestLines, changed: string[]): Changes | string {
  const wanted = new Set<string>()
  for (const p of changed) {
    wanted.add(p)
    for (let at = p.lastIndexOf('/'); at > 0; at = p.lastIndexOf('/', at - 1)) wanted.add(p.slice(0, at))
  }
  const sorted = [...wanted].map(p => ({ p, k: Buffer.from(p, 'utf8') })).sort((a, b) => Buffer.compare(a.k, b.k))
  const targets = new Map<string, Target>()
  const removedTrees: string[] = []
  const notFolders = new Set<string>()
  const found = new Map<string, number>()
  for (const { p, k } of sorted) {
    if (underAny(p, notFolders)) continue
    const at = lowerBound(old, k)
    found.set(p, at)
    // The old line's type is its first byte.
    const before = at < old.count && comparePathAt(old, at, k) === 0 ? String.fromCharCode(old.buf[old.starts[at]]) : undefined
    const st = statOrGone(join(save, p))
    const now = st && fromStats(p, st)
    if (!now) {
      targets.set(p, null)
      notFolders.add(p)
      if (before === 'd') removedTrees.push(p)
      continue
    }
    if (now.type === 'f' && now.nlink > 1) return 'the tree has hardlinks'
    if (now.type === 'l') readLinkTarget(now, join(save, p))
    targets.set(p, now)
    if (now.type !== 'd') {
      notFolders.add(p)
      if (before === 'd') removedTrees.push(p)
    } else if (before !== 'd') {
      // A new folder: everything in it is new.
      for (const e of scanTree(join(save, p))) {
        if (e.type === 'h' || (e.type === 'f' && e.nlink > 1)) return 'the tree has hardlinks'
        targets.set(`${p}/${e.path}`, { ...e, path: `${p}/${e.path}` })
      }
    }
  }
  return { targets, removedTrees, at: found }
}

function underAny(path: string, folders: Set<string>): boolean {
  for (let at = path.lastIndexOf('/'); at > 0; at = path.lastIndexOf('/', at - 1)) if (folders.has(path.slice(0, at))) return true
  return false
}

function statOrGone(path: string): Stats | undefined {
  try {
    return lstatSync(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined
    throw err
  }
}

interface Edit {
  from: number
  to: number
  key: Buffer
  line?: string
  entry?: ScannedEntry
}

/** Old lines [oldFrom, oldFrom + count) are new lines [newFrom, newFrom + count), byte for byte. */
interface Run {
  oldFrom: number
  newFrom: number
  count: number
}

/** A piece of the new data.dsync: old lines [from, to) copied as they are, or one new line. */
type Piece = { from: number; to: number } | Buffer

/**
 * The new data.dsync: old lines copied in runs, edited lines replaced, counts redone. Written
 * once into a buffer of its final size, with its line offsets (the old ones shifted), so
 * nothing passes over the 30 MB (at 200k files) again to copy or index it.
 */
function splice(old: ManifestLines, found: Changes, digests: Map<string, FileDigest>, memory?: WarmMemory) {
  const edits = editsOf(old, found, digests)
  const pieces: Piece[] = []
  const runs: Run[] = []
  let entries = old.entries
  let fileCount = old.files
  let bytes = old.bytes
  let cursor = 0
  let newLine = 0
  let bodyBytes = 0
  const keepRun = (from: number, to: number) => {
    if (to <= from) return
    pieces.push({ from, to })
    bodyBytes += old.starts[to] - old.starts[from]
    runs.push({ oldFrom: from, newFrom: newLine, count: to - from })
    newLine += to - from
  }
  for (const edit of edits) {
    keepRun(cursor, edit.from)
    for (let i = Math.max(cursor, edit.from); i < edit.to; i++) {
      const e = entryAt(old, i)
      entries--
      if (e.type === 'f') {
        fileCount--
        bytes -= e.size
      }
    }
    if (edit.entry) {
      const line = Buffer.from(edit.line + '\n', 'utf8')
      pieces.push(line)
      bodyBytes += line.length
      newLine++
      entries++
      if (edit.entry.type === 'f') {
        fileCount++
        bytes += edit.entry.size
      }
    }
    cursor = Math.max(cursor, edit.to)
  }
  keepRun(cursor, old.count)
  const head = Buffer.from(`${MAGIC} ${VERSION}\npiece-length ${old.pieceLength}\nentries ${entries}\nfiles ${fileCount}\nbytes ${bytes}\n\n`)
  return { ...assemble(old, head, pieces, bodyBytes, newLine, memory), runs, entries, files: fileCount, bytes }
}

/**
 * The spliced list written once at its final size: head, pieces (old runs and new lines), END; its
 * line offsets beside it. Into warmed memory when there is enough (every byte of it is written).
 */
function assemble(old: ManifestLines, head: Buffer, pieces: Piece[], bodyBytes: number, newLine: number, memory?: WarmMemory) {
  const endLength = 'END\t'.length + 64 + 1
  const size = head.length + bodyBytes + endLength
  const manifest = memory?.take(size) ?? Buffer.allocUnsafe(size)
  const starts = new Uint32Array(newLine + 1)
  let at = head.copy(manifest, 0)
  let line = 0
  for (const p of pieces) {
    if (Buffer.isBuffer(p)) {
      starts[line++] = at
      at += p.copy(manifest, at)
      continue
    }
    const shift = at - old.starts[p.from]
    for (let i = p.from; i < p.to; i++) starts[line++] = old.starts[i] + shift
    at += old.buf.copy(manifest, at, old.starts[p.from], old.starts[p.to])
  }
  starts[line] = at
  // One pass gives both the END line's checksum and the whole file's SHA-256 (the record's).
  const hash = createHash('sha256').update(manifest.subarray(0, at))
  manifest.write(`END\t${hash.copy().digest('hex')}\n`, at, 'latin1')
  const lines: LineTable = { buf: manifest, bodyAt: head.length - 2, endAt: at - 1, starts, count: newLine }
  return { manifest, lines, sha256: hash.update(manifest.subarray(at)).digest('hex') }
}

/** The old lines each changed path or removed tree replaces (or the place it goes), in order. */
function editsOf(old: ManifestLines, found: Changes, digests: Map<string, FileDigest>): Edit[] {
  const edits: Edit[] = []
  for (const [path, now] of found.targets) {
    const key = Buffer.from(path, 'utf8')
    const at = found.at.get(path) ?? lowerBound(old, key)
    const exists = at < old.count && comparePathAt(old, at, key) === 0
    const edit: Edit = { from: at, to: exists ? at + 1 : at, key }
    if (now) {
      edit.entry = now
      edit.line = formatEntry(toEntry(now, digests))
    }
    edits.push(edit)
  }
  for (const dir of found.removedTrees) {
    const from = lowerBound(old, Buffer.from(dir + '/', 'utf8'))
    edits.push({ from, to: lowerBound(old, Buffer.from(dir + '0', 'utf8')), key: Buffer.from(dir + '/', 'utf8') })
  }
  return edits.sort((a, b) => a.from - b.from || Buffer.compare(a.key, b.key))
}

/**
 * The new list's content table, and for each of its files the index in the previous table
 * when its line was kept (-1: edited): kept runs of lines take the previous table's rows,
 * shifted, and only the edited lines are parsed. The same table contentTable(next) gives,
 * without a second pass over the 30 MB (at 200k files) of the new list. `keptUntil`: for each
 * kept file, the end of the rows kept in a row with it (its previous rows consecutive too), so
 * that the shard splice copies such a run without asking each file again (shard-rebuild.ts).
 */
function nextContentTable(old: ContentTable, next: LineTable, runs: Run[], memory?: WarmMemory): { table: ContentTable; origin: Int32Array; keptUntil: Int32Array } {
  let kept = 0
  for (const r of runs) kept += r.count
  const cap = old.count + next.count - kept
  // Rows [0, count) are written before they are read, and only they are returned: warmed memory will do.
  const t: ContentTable = {
    lines: next, count: 0, line: newArray(Uint32Array, cap, memory), length: newArray(Float64Array, cap, memory),
    pathFrom: newArray(Uint32Array, cap, memory), pathTo: newArray(Uint32Array, cap, memory),
  }
  const origin = newArray(Int32Array, cap, memory)
  const keptUntil = newArray(Int32Array, cap, memory)
  const parse = (from: number, to: number) => {
    if (to <= from) return
    const edited = contentTable({ buf: next.buf, starts: next.starts.subarray(from), count: to - from })
    for (let i = 0; i < edited.count; i++) {
      const n = t.count++
      t.line[n] = edited.line[i] + from
      t.length[n] = edited.length[i]
      t.pathFrom[n] = edited.pathFrom[i]
      t.pathTo[n] = edited.pathTo[i]
      origin[n] = -1
      keptUntil[n] = n
    }
  }
  let k = 0
  let line = 0
  for (const r of runs) {
    parse(line, r.newFrom)
    while (k < old.count && old.line[k] < r.oldFrom) k++
    const shift = next.starts[r.newFrom] - old.lines.starts[r.oldFrom]
    const first = t.count
    for (; k < old.count && old.line[k] < r.oldFrom + r.count; k++) {
      const n = t.count++
      t.line[n] = old.line[k] - r.oldFrom + r.newFrom
      t.length[n] = old.length[k]
      t.pathFrom[n] = old.pathFrom[k] + shift
      t.pathTo[n] = old.pathTo[k] + shift
      origin[n] = k
    }
    keptUntil.fill(t.count, first, t.count)
    line = r.newFrom + r.count
  }
  parse(line, next.count)
  const n = t.count
  return {
    table: { ...t, line: t.line.subarray(0, n), length: t.length.subarray(0, n), pathFrom: t.pathFrom.subarray(0, n), pathTo: t.pathTo.subarray(0, n) },
    origin: origin.subarray(0, n),
    keptUntil: keptUntil.subarray(0, n),
  }
}

function toEntry(e: ScannedEntry, digests: Map<string, FileDigest>): ManifestEntry {
  const m: ManifestEntry = { type: e.type, path: e.path, mode: e.mode, size: e.size, mtime: e.mtime }
  if (e.type === 'f') m.sha256 = digests.get(e.path)!.sha256
  if (e.target !== undefined) m.target = e.target
  return m
}

export interface ContentChange {
  path: string
  length: number
  /** Read now (its digest is in the map), rather than kept from the previous torrents. */
  changed: boolean
}

/**
 * Piece hashes for the new torrents: read files from their digests, the others from the
 * previous torrents. A file that now ends a torrent (or no longer does) has its last piece
 * hashed again from disk, the one read an unchanged file costs. The client uses it too, to
 * rebuild a generation's torrents after a delta update (src/sync/rebuild-torrent.ts).
 */
export function reuseDigests(
  save: string, files: RepoFiles, content: ContentChange[],
  digests: Map<string, FileDigest>, pieceLength: number,
): { content: ShardFileDigest[]; starts: number[] } | string {
  const previous = oldPieces(files)
  if (!previous) return 'the previous torrents cannot be read'
  const starts = shardStarts(content, pieceLength)
  const ends = new Set(starts.slice(1).map(s => s - 1))
  if (content.length > 0) ends.add(content.length - 1)
  const out: ShardFileDigest[] = []
  for (let i = 0; i < content.length; i++) {
    const f = content[i]
    const ending = ends.has(i) && f.length % pieceLength !== 0
    if (f.changed) {
      const d = digests.get(f.path)!
      out.push({ path: f.path, length: f.length, pieces: d.pieces, tail: d.tail })
      continue
    }
    const o = previous.get(f.path)
    if (!o || o.length !== f.length) return `${f.path} is not in the previous torrents as data.dsync lists it`
    if (o.ended === ending || f.length % pieceLength === 0) {
      out.push({ path: f.path, length: f.length, pieces: o.pieces, tail: ending ? o.pieces.subarray(o.pieces.length - 20) : undefined })
      continue
    }
    const last = lastPieceHashes(join(save, f.path), f.length, pieceLength)
    if (!last) return `${f.path} changed but the hint does not name it`
    const pieces = Buffer.from(o.pieces)
    if (!ending) last.padded.copy(pieces, pieces.length - 20)
    out.push({ path: f.path, length: f.length, pieces, tail: ending ? last.tail : undefined })
  }
  return { content: out, starts }
}
