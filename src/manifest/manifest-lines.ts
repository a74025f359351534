import { createHash } from 'node:crypto'
import { DsyncError, ExitCode } from '../errors.js'
import { isSafeRelativePath } from './entry.js'
import { unescapePath } from './escape.js'
import { MAGIC, VERSION } from './format.js'
import { DSYNC_DIR } from './paths.js'

/**
 * A data.dsync held as its bytes plus one offset per entry line, without an object per entry:
 * what gendsync's change hint needs to edit the previous generation in place (find a path by
 * binary search, splice lines, recount). Only the host's own data.dsync is read this way; its
 * END checksum is verified, so a damaged file is refused (and a full run replaces it).
 */
export interface ManifestLines {
  buf: Buffer
  pieceLength: number
  entries: number
  files: number
  bytes: number
  /** Offset of each entry line, then of the END line: `count + 1` values. */
  starts: Uint32Array
  count: number
  /** The END line's checksum (hex): the generation's identity in logs and status. */
  digest: string
  /** SHA-256 of the whole file (what a signed record names), from the same pass. */
  fileSha256: string
}

export function readManifestLines(buf: Buffer, file: string, known?: KnownStarts): ManifestLines {
  const bad = (reason: string) => new DsyncError(ExitCode.badData, 'manifest.corrupt', { file, line: 0, reason })
  const layout = layoutOf(buf)
  if (typeof layout === 'string') throw bad(layout)
  const { bodyAt, endAt } = layout
  const hash = createHash('sha256').update(buf.subarray(0, endAt + 1))
  const sum = hash.copy().digest('hex')
  const fileSha256 = hash.update(buf.subarray(endAt + 1)).digest('hex')
  if (buf.toString('latin1', endAt + 5, endAt + 69) !== sum) throw bad('checksum mismatch')
  const header = new Map<string, number>()
  for (const line of buf.toString('utf8', 0, bodyAt).split('\n').slice(1)) {
    const [name, value] = line.split(' ')
    header.set(name, Number(value))
  }
  const starts = known?.({ fileSha256, bodyAt, endAt, entries: header.get('entries') }) ?? lineStarts(buf, bodyAt, endAt)
  return {
    buf, count: starts.length - 1, starts, digest: sum, fileSha256,
    pieceLength: header.get('piece-length') ?? 0, entries: header.get('entries') ?? 0,
    files: header.get('files') ?? 0, bytes: header.get('bytes') ?? 0,
  }
}

/**
 * Line offsets a caller already has for a list (line-cache.ts), asked once the list's layout and
 * SHA-256 are known; undefined when they are not this list's, and the list is indexed instead.
 */
export type KnownStarts = (list: { fileSha256: string; bodyAt: number; endAt: number; entries: number | undefined }) => Uint32Array | undefined

/** A data.dsync's bytes and the offset of each entry line (then of the END line). */
export interface Lines {
  buf: Buffer
  starts: Uint32Array
  count: number
}

/** The offsets of a data.dsync's entry lines, without checking its END checksum. */
export interface LineTable {
  buf: Buffer
  /** The empty line ending the header, and the newline before the END line. */
  bodyAt: number
  endAt: number
  /** Offset of each entry line, then of the END line: `count + 1` values. */
  starts: Uint32Array
  count: number
}

/** One pass of indexOf over the bytes; a reason instead when the layout is not data.dsync's. */
export function indexLines(buf: Buffer): LineTable | string {
  const layout = layoutOf(buf)
  if (typeof layout === 'string') return layout
  const starts = lineStarts(buf, layout.bodyAt, layout.endAt)
  return { buf, ...layout, starts, count: starts.length - 1 }
}

/** Where the header ends and the END line begins; a reason instead when the layout is not data.dsync's. */
function layoutOf(buf: Buffer): { bodyAt: number; endAt: number } | string {
  const endAt = buf.lastIndexOf('\nEND\t', buf.length - 2)
  if (endAt < 0 || !buf.subarray(0, MAGIC.length + 2).equals(Buffer.from(`${MAGIC} ${VERSION}`))) return 'not a data.dsync file'
  const bodyAt = buf.indexOf('\n\n')
  if (bodyAt < 0 || bodyAt > endAt) return 'no header end'
  return { bodyAt, endAt }
}

/** The offset of each entry line, then of the END line. */
function lineStarts(buf: Buffer, bodyAt: number, endAt: number): Uint32Array {
  let starts = new Uint32Array(1 << 16)
  let count = 0
  for (let at = bodyAt + 2; at <= endAt; at = buf.indexOf(0x0a, at) + 1) {
    if (count + 1 >= starts.length) {
      const grown = new Uint32Array(starts.length * 2)
      grown.set(starts)
      starts = grown
    }
    starts[count++] = at
  }
  starts[count] = endAt + 1 // the END line's
  return starts.slice(0, count + 1)
}

/** Entry line `i` without its newline. */
export function lineAt(m: ManifestLines, i: number): Buffer {
  return m.buf.subarray(m.starts[i], m.starts[i + 1] - 1)
}

/** Type, size, mtime and (unescaped) path of entry line `i`. */
export function entryAt(m: ManifestLines, i: number): { type: string; size: number; mtime: number; path: string } {
  const line = lineAt(m, i)
  let tab = -1
  const fields: number[] = []
  for (let f = 0; f < 6; f++) {
    fields.push(tab + 1)
    tab = line.indexOf(0x09, tab + 1)
    if (tab < 0) tab = line.length
  }
  fields.push(tab + 1)
  const raw = line.toString('utf8', fields[5], fields[6] - 1)
  return {
    type: String.fromCharCode(line[0]),
    size: Number(line.toString('latin1', fields[2], fields[3] - 1)),
    mtime: Number(line.toString('latin1', fields[3], fields[4] - 1)),
    path: unescapePath(raw) ?? raw,
  }
}

export interface ContentFile {
  type: 'f'
  path: string
  size: number
  mtime: number
}

/**
 * The files a torrent of this data.dsync holds (type f, size > 0), in order, without an object
 * for any other entry or a digest buffer for any: what a host needs to seed a generation. Each
 * path must be safe (relative, no `..`, not under .dsync): the host opens files by these paths.
 */
export function contentFiles(m: ManifestLines, file: string): ContentFile[] {
  const out: ContentFile[] = []
  for (let i = 0; i < m.count; i++) {
    if (m.buf[m.starts[i]] !== 0x66) continue // 'f'
    const e = entryAt(m, i)
    if (e.type !== 'f' || !(e.size > 0)) continue
    if (!isSafeRelativePath(e.path) || e.path === DSYNC_DIR || e.path.startsWith(DSYNC_DIR + '/')) {
      throw new DsyncError(ExitCode.badData, 'manifest.corrupt', { file, line: i + 1, reason: 'unsafe or malformed path' })
    }
    out.push({ type: 'f', path: e.path, size: e.size, mtime: e.mtime })
  }
  return out
}

/** Byte range of line `i`'s path field (escaped as written). */
export function pathField(m: Lines, i: number): [number, number] {
  const buf = m.buf
  const end = m.starts[i + 1] - 1
  let at = m.starts[i]
  for (let f = 0; f < 5 && at <= end; f++) at = buf.indexOf(0x09, at) + 1 || end + 1
  if (at > end) return [end, end]
  const tab = buf.indexOf(0x09, at)
  return [at, tab < 0 || tab > end ? end : tab]
}

function hasBackslash(buf: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] === 0x5c) return true
  return false
}

/**
 * Compares line `i`'s path with `key` (UTF-8 bytes) in data.dsync's order. Without a
 * backslash the escaped field is the path's own bytes, compared in place (no allocation).
 */
export function comparePathAt(m: Lines, i: number, key: Buffer): number {
  const [from, to] = pathField(m, i)
  if (!hasBackslash(m.buf, from, to)) return m.buf.compare(key, 0, key.length, from, to)
  return Buffer.compare(pathKeyAt(m, i), key)
}

/** Line `i`'s path as UTF-8 bytes (a view into the buffer unless it had to be unescaped). */
export function pathKeyAt(m: Lines, i: number): Buffer {
  const [from, to] = pathField(m, i)
  if (!hasBackslash(m.buf, from, to)) return m.buf.subarray(from, to)
  const raw = m.buf.toString('utf8', from, to)
  return Buffer.from(unescapePath(raw) ?? raw, 'utf8')
}

/** First line whose path is not below `key` (UTF-8 byte order, data.dsync's order). */
export function lowerBound(m: Lines, key: Buffer): number {
  let lo = 0
  let hi = m.count
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (comparePathAt(m, mid, key) < 0) lo = mid + 1
    else hi = mid
  }
  return lo
}
