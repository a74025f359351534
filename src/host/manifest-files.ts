import { DsyncError, ExitCode } from '../errors.js'
import { isSafeRelativePath } from '../manifest/entry.js'
import { unescapePath } from '../manifest/escape.js'
import type { ManifestLines } from '../manifest/manifest-lines.js'
import { DSYNC_DIR } from '../manifest/paths.js'
import type { ExpectedFiles } from '../torrent/file-list.js'
import { readDecimal } from '../util/decimal.js'

/** What a host needs of each file it serves: where it is, and what it must be on disk. */
export interface FileFacts {
  path(k: number): string
  size(k: number): number
  mtime(k: number): number
  /** The inode gendsync hashed, when known. */
  ino(k: number): number | undefined
}

/**
 * data.dsync's content files (type f, size > 0), in order, as typed arrays over the file's
 * own bytes: no object or string per file (a 1M-file repository is served from ~36 bytes a
 * file plus data.dsync itself). Paths are decoded only when a file is opened. Each path is
 * checked safe (relative, no `..`, not under .dsync) as the parsed form checks it.
 */
export class ManifestFiles implements FileFacts, ExpectedFiles {
  readonly count: number
  readonly buf: Buffer
  /** Entry line of each content file, and its path's bytes (escaped as in data.dsync). */
  readonly line: Uint32Array
  readonly pathStarts: Uint32Array
  readonly pathEnds: Uint32Array
  readonly sizes: Float64Array
  readonly mtimes: Float64Array
  /** NaN where the hash cache does not vouch for an inode. */
  readonly inodes: Float64Array
  /** Unescaped path bytes of the few paths data.dsync had to escape. */
  private readonly unescaped = new Map<number, Buffer>()

  constructor(m: ManifestLines, file: string) {
    this.buf = m.buf
    const cap = m.count
    const line = new Uint32Array(cap)
    const starts = new Uint32Array(cap)
    const ends = new Uint32Array(cap)
    const sizes = new Float64Array(cap)
    const mtimes = new Float64Array(cap)
    const f = { size: 0, mtime: 0, pathStart: 0, pathEnd: 0 }
    let n = 0
    for (let i = 0; i < m.count; i++) {
      if (m.buf[m.starts[i]] !== 0x66) continue // 'f'
      fields(m.buf, m.starts[i], m.starts[i + 1] - 1, f)
      if (!(f.size > 0)) continue
      if (!this.checkPath(n, f.pathStart, f.pathEnd)) {
        throw new DsyncError(ExitCode.badData, 'manifest.corrupt', { file, line: i + 1, reason: 'unsafe or malformed path' })
      }
      line[n] = i
      starts[n] = f.pathStart
      ends[n] = f.pathEnd
      sizes[n] = f.size
      mtimes[n] = f.mtime
      n++
    }
    this.count = n
    // Copies, not views: the arrays above were sized for every entry line.
    this.line = line.slice(0, n)
    this.pathStarts = starts.slice(0, n)
    this.pathEnds = ends.slice(0, n)
    this.sizes = sizes.slice(0, n)
    this.mtimes = mtimes.slice(0, n)
    this.inodes = new Float64Array(n).fill(NaN)
  }

  path(k: number): string {
    const u = this.unescaped.get(k)
    return u ? u.toString('utf8') : this.buf.toString('utf8', this.pathStarts[k], this.pathEnds[k])
  }

  size(k: number): number {
    return this.sizes[k]
  }

  mtime(k: number): number {
    return this.mtimes[k]
  }

  ino(k: number): number | undefined {
    const v = this.inodes[k]
    return Number.isNaN(v) ? undefined : v
  }

  length(k: number): number {
    return this.sizes[k]
  }

  pathBuf(k: number): Buffer {
    return this.unescaped.get(k) ?? this.buf
  }

  pathStart(k: number): number {
    return this.unescaped.has(k) ? 0 : this.pathStarts[k]
  }

  pathEnd(k: number): number {
    const u = this.unescaped.get(k)
    return u ? u.length : this.pathEnds[k]
  }

  /** Safe as `isSafeRelativePath` says and not under .dsync, checked on the bytes. */
  private checkPath(k: number, start: number, end: number): boolean {
    const buf = this.buf
    let seg = start
    for (let p = start; p <= end; p++) {
      const c = p < end ? buf[p] : 0x2f
      if (c === 0x5c) return this.checkEscaped(k, start, end) // '\\': decode, then check as text
      if (c === 0) return false
      if (c !== 0x2f) continue
      const len = p - seg
      if (len === 0 || (buf[seg] === 0x2e && (len === 1 || (len === 2 && buf[seg + 1] === 0x2e)))) return false
      if (seg === start && len === DSYNC.length && buf.compare(DSYNC, 0, len, seg, p) === 0) return false
      seg = p + 1
    }
    return true
  }

  private checkEscaped(k: number, start: number, end: number): boolean {
    const raw = this.buf.toString('utf8', start, end)
    const path = unescapePath(raw) ?? raw
    if (!isSafeRelativePath(path) || path === DSYNC_DIR || path.startsWith(DSYNC_DIR + '/')) return false
    this.unescaped.set(k, Buffer.from(path, 'utf8'))
    return true
  }
}

const DSYNC = Buffer.from(DSYNC_DIR)

/**
 * Size, mtime and path range of the entry line [at, end): `type mode size mtime sha256 path
 * [target]`, tab-separated. Digits are read in place; anything unusual goes through Number()
 * on the text, so values come out exactly as the parsed form reads them.
 */
const tabs = new Int32Array(5)

function fields(buf: Buffer, at: number, end: number, out: { size: number; mtime: number; pathStart: number; pathEnd: number }): void {
  let p = at
  for (let t = 0; t < 5; t++) {
    if (t === 4) {
      // The sha256 field (64 digits): one native search rather than a byte loop.
      const tab = buf.indexOf(0x09, p)
      p = tab < 0 || tab > end ? end : tab
    }
    while (p < end && buf[p] !== 0x09) p++
    tabs[t] = p
    if (p < end) p++
  }
  out.size = readDecimal(buf, tabs[1] + 1, tabs[2])
  out.mtime = readDecimal(buf, tabs[2] + 1, tabs[3])
  out.pathStart = Math.min(tabs[4] + 1, end)
  const tab = buf.indexOf(0x09, out.pathStart)
  out.pathEnd = tab < 0 || tab > end ? end : tab
}
