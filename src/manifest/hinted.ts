import { createHash } from 'node:crypto'
import { lstatSync, readFileSync, readlinkSync, type Stats } from 'node:fs'
import { join } from 'node:path'
import { pieceLengthFor } from '../torrent/layout.js'
import { shardStarts, type ShardFileDigest } from '../torrent/shards.js'
import type { ManifestEntry } from './entry.js'
import { MAGIC, VERSION, formatEntry } from './format.js'
import type { FileDigest } from './hash-file.js'
import { hashFiles, type HashJob } from './hash-pool.js'
import { entryAt, lowerBound, readManifestLines, type ManifestLines } from './manifest-lines.js'
import { lastPieceHashes, oldPieces } from './old-pieces.js'
import type { RepoFiles } from './paths.js'
import { fromStats, scanTree, type ScannedEntry } from './scan.js'

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
  content: ShardFileDigest[]
  starts: number[]
  entries: number
  files: number
  bytes: number
  /** Files read, for the hash cache and the summary. */
  hashed: { path: string; entry: ScannedEntry; digest: FileDigest }[]
}

type Target = ScannedEntry | null

export async function generateHinted(save: string, files: RepoFiles, changed: string[], threads?: number): Promise<HintedGeneration | string> {
  let old: ManifestLines
  try {
    old = readManifestLines(readFileSync(files.manifest), files.manifest)
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
  const spliced = splice(old, found, digests)
  if (pieceLengthFor(spliced.bytes) !== old.pieceLength) return 'the piece length changes'
  const torrentFiles = reuseDigests(save, files, spliced.content, digests, old.pieceLength)
  if (typeof torrentFiles === 'string') return torrentFiles
  return { ...spliced, pieceLength: old.pieceLength, content: torrentFiles.content, starts: torrentFiles.starts, hashed }
}

interface Changes {
  /** Path -> what it is now (null: gone), for every path to rewrite, sorted by UTF-8 bytes. */
  targets: Map<string, Target>
  /** Old folders gone or replaced: every line under them goes. */
  removedTrees: string[]
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
  for (const { p, k } of sorted) {
    if (underAny(p, notFolders)) continue
    const at = lowerBound(old, k)
    const before = at < old.count && entryAt(old, at).path === p ? entryAt(old, at).type : undefined
    const st = statOrGone(join(save, p))
    const now = st && fromStats(p, st)
    if (!now) {
      targets.set(p, null)
      notFolders.add(p)
      if (before === 'd') removedTrees.push(p)
      continue
    }
    if (now.type === 'f' && now.nlink > 1) return 'the tree has hardlinks'
    if (now.type === 'l') now.size = Buffer.byteLength((now.target = readlinkSync(join(save, p))))
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
  return { targets, removedTrees }
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

/** The new data.dsync: old lines copied in runs, edited lines replaced, counts redone. */
function splice(old: ManifestLines, found: Changes, digests: Map<string, FileDigest>) {
  const edits: Edit[] = []
  for (const [path, now] of found.targets) {
    const key = Buffer.from(path, 'utf8')
    const at = lowerBound(old, key)
    const exists = at < old.count && entryAt(old, at).path === path
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
  edits.sort((a, b) => a.from - b.from || Buffer.compare(a.key, b.key))
  const chunks: Buffer[] = []
  const content: { path: string; length: number; changed: boolean }[] = []
  let entries = old.entries
  let fileCount = old.files
  let bytes = old.bytes
  let cursor = 0
  const keepRun = (from: number, to: number) => {
    if (to <= from) return
    chunks.push(old.buf.subarray(old.starts[from], old.starts[to]))
    for (let i = from; i < to; i++) {
      const e = entryAt(old, i)
      if (e.type === 'f' && e.size > 0) content.push({ path: e.path, length: e.size, changed: false })
    }
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
      chunks.push(Buffer.from(edit.line + '\n', 'utf8'))
      entries++
      if (edit.entry.type === 'f') {
        fileCount++
        bytes += edit.entry.size
        if (edit.entry.size > 0) content.push({ path: edit.entry.path, length: edit.entry.size, changed: true })
      }
    }
    cursor = Math.max(cursor, edit.to)
  }
  keepRun(cursor, old.count)
  const head = `${MAGIC} ${VERSION}\npiece-length ${old.pieceLength}\nentries ${entries}\nfiles ${fileCount}\nbytes ${bytes}\n\n`
  const body = Buffer.concat([Buffer.from(head), ...chunks])
  const manifest = Buffer.concat([body, Buffer.from(`END\t${createHash('sha256').update(body).digest('hex')}\n`)])
  return { manifest, content, entries, files: fileCount, bytes }
}

function toEntry(e: ScannedEntry, digests: Map<string, FileDigest>): ManifestEntry {
  const m: ManifestEntry = { type: e.type, path: e.path, mode: e.mode, size: e.size, mtime: e.mtime }
  if (e.type === 'f') m.sha256 = digests.get(e.path)!.sha256
  if (e.target !== undefined) m.target = e.target
  return m
}

/**
 * Piece hashes for the new torrents: read files from their digests, the others from the
 * previous torrents. A file that now ends a torrent (or no longer does) has its last piece
 * hashed again from disk, the one read an unchanged file costs. The client uses it too, to
 * rebuild a sharded generation's torrents after a delta update (src/sync/rebuild-shards.ts).
 */
export function reuseDigests(
  save: string, files: RepoFiles, content: { path: string; length: number; changed: boolean }[],
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
