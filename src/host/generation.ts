import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { contentFiles, readManifestLines, type ManifestLines } from '../manifest/manifest-lines.js'
import { MANIFEST_TORRENT_PATH, repoFiles } from '../manifest/paths.js'
import { magnetLink } from '../torrent/build.js'
import { indexedShardsAt, matchFileList, piecesFit, prefixed, readTorrentWalked, type RunMatch } from '../torrent/file-list.js'
import { matchShardsToManifest, matchTorrentToManifest } from '../torrent/match.js'
import { Reader, readTorrentInfo, type TorrentInfo } from '../torrent/read.js'
import { indexedShards, shardTorrentPath } from '../torrent/shards.js'
import { loadInodes, loadInodesLater } from './inodes.js'
import { ManifestFiles } from './manifest-files.js'
import { SegmentTable, type HeadEntry } from './segment-table.js'

export type { Segment } from './segment-table.js'

/**
 * One generation of a published repository, ready to seed: data.dsync, the .torrent made
 * from it, and the byte layout tying the two together. Nothing here reads the repository's
 * files: the host trusts gendsync's hashes and checks size/mtime when a file is opened.
 */
export interface Generation {
  repo: string
  save: string
  infoHash: string
  infoBytes: Buffer
  torrent: Buffer
  magnet: string
  manifest: Buffer
  /** SHA-256 of data.dsync (hex): the generation's identity. */
  digest: string
  /** SHA-256 of the whole data.dsync file, as a signed record names it (absent for a delta torrent). */
  manifestSha256?: string
  pieceLength: number
  pieceCount: number
  totalLength: number
  segments: SegmentTable
  files: number
  bytes: number
  trackers: string[]
  /**
   * A sharded repository: this generation is its index torrent (data.dsync and the shard
   * .torrent files), and each shard is a generation of its own, seeded under its infohash.
   */
  shards?: Generation[]
  /**
   * Set while the inodes gendsync hashed are still being read from its hash cache (a host
   * loading with `inodesLater`): no file may be served before it resolves.
   */
  inodesLoaded?: Promise<void>
}

export interface LoadOptions {
  /** Read the hash cache's inodes in the background (a host: HTTP answers meanwhile). */
  inodesLater?: boolean
}

export class GenerationError extends Error {}

type Base = Pick<Generation, 'repo' | 'save' | 'manifest' | 'digest' | 'manifestSha256' | 'pieceLength' | 'trackers' | 'files' | 'bytes'>

/** What the loader has read: data.dsync as lines and as a typed table of its content files. */
interface Loaded {
  paths: ReturnType<typeof repoFiles>
  lines: ManifestLines
  files: ManifestFiles
  base: Base
  magnet: string
}

/**
 * Loads and checks a generation. The torrents must describe exactly the bytes data.dsync
 * describes (a torrent from another generation, gendsync interrupted between renames, a
 * hand-copied file is refused, naming the first difference). At 1M files the file lists are
 * walked in place against data.dsync's bytes (`matchFileList`), with no object per file; the
 * reason for a difference is then found by the parsed check (`explain`).
 */
export function loadGeneration(repo: string, save: string, opts: LoadOptions = {}): Generation {
  const paths = repoFiles(save, repo)
  const manifestBytes = readOrFail(paths.manifest)
  const torrent = readOrFail(paths.torrent)
  let magnet = ''
  try {
    magnet = readFileSync(paths.magnet, 'utf8').trim()
  } catch {
    // the magnet link is derived below when the file is missing
  }
  // Not parseManifest: an object per entry and a buffer per digest cost ~1.8 GB at 1M files.
  const lines = readManifestLines(manifestBytes, paths.manifest)
  const files = new ManifestFiles(lines, paths.manifest)
  const base: Base = {
    repo, save, manifest: manifestBytes, digest: lines.digest, manifestSha256: lines.fileSha256,
    files: lines.files, bytes: lines.bytes, pieceLength: lines.pieceLength, trackers: [],
  }
  const loaded: Loaded = { paths, lines, files, base, magnet }
  const manifestHead: HeadEntry = { source: 'manifest', path: MANIFEST_TORRENT_PATH, data: manifestBytes }
  let named: string[] | undefined
  let run: RunMatch | undefined
  let filesAt = 0
  const info = parseTorrent(paths.torrent, torrent, r => {
    filesAt = r.pos
    named = indexedShardsAt(r)
    if (!named) run = matchFileList(r, base.pieceLength, prefixed([headPath(manifestHead)], files), 0, true)
    return run !== undefined
  })
  base.trackers = info.trackers
  const gen = named ? loadSharded(loaded, info, filesAt, torrent, named, manifestHead) : loadOne(loaded, info, torrent, run, manifestHead)
  // Checked first: a generation refused for its torrents costs no cache read.
  if (!opts.inodesLater) loadInodes(paths.hashCache, files)
  else {
    const pending = loadInodesLater(paths.hashCache, files)
    for (const g of [gen, ...(gen.shards ?? [])]) g.inodesLoaded = pending
  }
  return gen
}

function loadOne(loaded: Loaded, info: TorrentInfo, torrent: Buffer, run: RunMatch | undefined, manifestHead: HeadEntry): Generation {
  const { base, files, magnet } = loaded
  if (!run || !piecesFit(info, base.pieceLength, run)) explain(loaded)
  return {
    ...base, segments: new SegmentTable([manifestHead], run!.offsets, files, 0, run!.totalLength),
    totalLength: run!.totalLength, pieceCount: Math.ceil(run!.totalLength / base.pieceLength),
    infoHash: info.infoHash, infoBytes: info.infoBytes, torrent,
    magnet: magnet || magnetLink(info.infoHash, base.repo, []),
  }
}

/** The index and every shard it names, each checked against data.dsync. */
function loadSharded(loaded: Loaded, info: TorrentInfo, filesAt: number, torrent: Buffer, named: string[], manifestHead: HeadEntry): Generation {
  const { paths, files, base } = loaded
  const heads: HeadEntry[] = [manifestHead]
  const shards: Generation[] = []
  let next = 0
  let ok = true
  for (const ih of named) {
    const file = join(paths.shards, `${ih}.torrent`)
    const bytes = readOrFail(file)
    heads.push({ source: 'memory', path: shardTorrentPath(ih), data: bytes })
    let run: RunMatch | undefined
    const si = parseTorrent(file, bytes, r => {
      run = ok ? matchFileList(r, base.pieceLength, files, next, false) : undefined
      return run !== undefined
    })
    if (si.infoHash !== ih) throw new GenerationError(`${file}: infohash ${si.infoHash} differs from its name`)
    if (!run || !piecesFit(si, base.pieceLength, run)) {
      ok = false // the rest is read and hashed as before; the parsed check names the difference
      continue
    }
    let sum = 0
    for (let k = next; k < next + run.count; k++) sum += files.sizes[k]
    shards.push({
      ...base, segments: new SegmentTable([], run.offsets, files, next, run.totalLength),
      totalLength: run.totalLength, pieceCount: Math.ceil(run.totalLength / base.pieceLength),
      infoHash: si.infoHash, infoBytes: si.infoBytes, torrent: bytes, magnet: magnetLink(si.infoHash, base.repo, si.trackers),
      files: run.count, bytes: sum,
    })
    next += run.count
  }
  const index = ok && next === files.count ? matchIndex(info, filesAt, heads, base.pieceLength) : undefined
  if (!index) explain(loaded)
  return {
    ...base, segments: new SegmentTable(heads, index!.offsets, files, 0, index!.totalLength),
    totalLength: index!.totalLength, pieceCount: Math.ceil(index!.totalLength / base.pieceLength),
    infoHash: info.infoHash, infoBytes: info.infoBytes, torrent,
    magnet: loaded.magnet || magnetLink(info.infoHash, base.repo, []),
    shards,
  }
}

/** The index torrent's list: data.dsync, then the shard .torrent files in order. */
function matchIndex(info: TorrentInfo, filesAt: number, heads: HeadEntry[], pieceLength: number): RunMatch | undefined {
  const r = new Reader(info.infoBytes)
  r.pos = filesAt
  const run = matchFileList(r, pieceLength, prefixed(heads.map(headPath)), 0, true)
  return run && piecesFit(info, pieceLength, run) ? run : undefined
}

/**
 * Why the torrents differ from data.dsync, found by the parsed check (an object per file:
 * only when the fast walk found a difference). Always throws.
 */
function explain(loaded: Loaded): never {
  const { paths, lines, base } = loaded
  const manifest = { header: { pieceLength: base.pieceLength }, entries: contentFiles(lines, paths.manifest) }
  const info = parseTorrent(paths.torrent, readOrFail(paths.torrent))
  const named = indexedShards(info.files)
  let reason: string | undefined
  if (named) {
    const shards = named.map(ih => {
      const file = join(paths.shards, `${ih}.torrent`)
      const bytes = readOrFail(file)
      return { ...parseTorrent(file, bytes), torrentLength: bytes.length }
    })
    const layouts = matchShardsToManifest(info, shards, manifest, base.manifest.length)
    if (typeof layouts === 'string') reason = layouts
  } else {
    const layout = matchTorrentToManifest(info, manifest, base.manifest.length)
    if (typeof layout === 'string') reason = layout
  }
  throw new GenerationError(`${paths.torrent}: ${reason ?? 'the torrent does not match data.dsync byte for byte'}`)
}

/** `walk` reads the `files` list and says whether it read all of it; if not, the rest is skipped. */
function parseTorrent(file: string, bytes: Buffer, walk?: (r: Reader) => boolean): TorrentInfo {
  try {
    return walk ? readTorrentWalked(bytes, walk) : readTorrentInfo(bytes)
  } catch (err) {
    throw new GenerationError(`${file}: malformed torrent (${(err as Error).message})`)
  }
}

function headPath(h: HeadEntry) {
  return { path: Buffer.from(h.path, 'utf8'), length: h.data.length }
}

function readOrFail(file: string): Buffer {
  try {
    return readFileSync(file)
  } catch (err) {
    throw new GenerationError(`${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing (run gendsync)' : (err as Error).message}`)
  }
}
