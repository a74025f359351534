import { createHash } from 'node:crypto'
import { closeSync, openSync, readSync } from 'node:fs'
import { DsyncError, ExitCode } from '../errors.js'
import { isSafeRelativePath, type EntryType, type ManifestEntry, type ManifestHeader } from './entry.js'
import { escapePath, unescapePath } from './escape.js'
import { DSYNC_DIR } from './paths.js'
import { SlabEntry, SlabTable } from './slab-entry.js'
import { writeDecimal, writeHex } from '../util/digits.js'

export { SlabEntry, SlabTable, sameEntry } from './slab-entry.js'

/**
 * data.dsync, version 1 (docs/FORMAT.md is the specification; keep them in step):
 *
 *   DSYNC-MANIFEST 1
 *   piece-length 32768
 *   entries 3
 *   files 1
 *   bytes 5
 *   <empty line>
 *   d<TAB>0755<TAB>0<TAB>1700000000<TAB>-<TAB>pool
 *   f<TAB>0644<TAB>5<TAB>1700000000<TAB><sha256 hex><TAB>pool/a.deb
 *   l<TAB>0777<TAB>5<TAB>1700000000<TAB>-<TAB>latest<TAB>pool
 *   END<TAB><sha256 hex of every byte before this line>
 */
export const MAGIC = 'DSYNC-MANIFEST'
export const VERSION = 1
/** A line longer than this is corrupt: paths are at most 4096 bytes on Linux, twice with a target. */
const MAX_LINE = 20_000

export interface Manifest {
  header: ManifestHeader
  entries: ManifestEntry[]
  /** The END line's checksum (SHA-256 of every byte before it): the generation's identity in logs and status. */
  digest: Buffer
}

export function headerFor(entries: ManifestEntry[], pieceLength: number): ManifestHeader {
  let files = 0
  let bytes = 0
  for (const e of entries) {
    if (e.type === 'f') {
      files++
      bytes += e.size
    }
  }
  return { version: VERSION, pieceLength, entries: entries.length, files, bytes }
}

export function formatEntry(e: ManifestEntry): string {
  const hash = e.sha256 ? e.sha256.toString('hex') : '-'
  const fields = [e.type, e.mode.toString(8).padStart(4, '0'), String(e.size), String(e.mtime), hash, escapePath(e.path)]
  if (e.target !== undefined) fields.push(escapePath(e.target))
  return fields.join('\t')
}

/** Serialises sorted entries. Output is a pure function of its input: no dates, no host names. */
export function serializeManifest(entries: ManifestEntry[], pieceLength: number): Buffer {
  const w = new ManifestWriter(headerFor(entries, pieceLength), entries.length * 128)
  for (const e of entries) w.line(e.type, e.mode, e.size, e.mtime, e.sha256, 0, e.path, e.target)
  return w.finish()
}

/**
 * END line of a finished data.dsync whose lines were changed in place since (same length): the
 * checksum again. Returns the whole file's SHA-256 (the record's and the caches' name for it),
 * from the same pass: the END line's checksum covers every byte before that line.
 */
export function resealManifest(data: Buffer): string {
  const body = data.length - END_LINE_BYTES
  const hash = createHash('sha256').update(data.subarray(0, body))
  const sum = hash.copy().digest()
  writeHex(data, body + 4, sum, 0, 32)
  return hash.update(data.subarray(body)).digest('hex')
}

/** `END\t<64 hex digits>\n` */
const END_LINE_BYTES = 69

/**
 * data.dsync written front to back into one buffer, a line per call: what serializeManifest
 * does for entry objects, for callers that hold their entries as tables (a full gendsync
 * writes 200k lines with no object, string array or join per line).
 */
export class ManifestWriter {
  private buf: Buffer
  private at = 0

  constructor(h: ManifestHeader, sizeHint: number) {
    this.buf = Buffer.allocUnsafe(Math.max(sizeHint, 1024))
    this.text(`${MAGIC} ${VERSION}\npiece-length ${h.pieceLength}\nentries ${h.entries}\nfiles ${h.files}\nbytes ${h.bytes}\n\n`)
  }

  /**
   * One entry; `sha256[shaAt, shaAt + 32)` is its SHA-256 (files and hardlinks), undefined for
   * the rest; shaAt < 0: not known yet, 64 bytes left for the caller to fill in later. Returns
   * where its hex digits start (-1: none).
   */
  line(type: EntryType, mode: number, size: number, mtime: number, sha256: Uint8Array | undefined, shaAt: number, path: string, target?: string): number {
    this.reserve(path.length * 3 + (target?.length ?? 0) * 3 + 160)
    const b = this.buf
    b[this.at++] = type.charCodeAt(0)
    b[this.at++] = 0x09
    // mode.toString(8).padStart(4, '0') for modes up to 07777
    for (let shift = 9; shift >= 0; shift -= 3) b[this.at++] = 0x30 + ((mode >> shift) & 7)
    b[this.at++] = 0x09
    this.at = writeDecimal(b, this.at, size)
    b[this.at++] = 0x09
    this.at = writeDecimal(b, this.at, mtime)
    b[this.at++] = 0x09
    const hexAt = sha256 ? this.at : -1
    if (!sha256) b[this.at++] = 0x2d
    else if (shaAt < 0) {
      // '0's until the caller writes the digest: the lines stay lines meanwhile (shard torrents are encoded from them).
      b.fill(0x30, this.at, this.at + 64)
      this.at += 64
    } else this.at = writeHex(b, this.at, sha256, shaAt, 32)
    b[this.at++] = 0x09
    this.at += b.write(escapePath(path), this.at, 'utf8')
    if (target !== undefined) {
      b[this.at++] = 0x09
      this.at += b.write(escapePath(target), this.at, 'utf8')
    }
    b[this.at++] = 0x0a
    return hexAt
  }

  /**
   * The END line (SHA-256 of every byte before it) appended: the finished file. `sealed` false:
   * an END line of zeros, for a caller that fills digests in later and reseals it then
   * (resealManifest; a full gendsync: a pass over 30 MB at 200k files not made twice).
   */
  finish(sealed = true): Buffer {
    const sum = sealed ? createHash('sha256').update(this.buf.subarray(0, this.at)).digest('hex') : '0'.repeat(64)
    this.reserve(80)
    this.text(`END\t${sum}\n`)
    return this.buf.subarray(0, this.at)
  }

  private text(s: string): void {
    this.reserve(s.length * 3)
    this.at += this.buf.write(s, this.at, 'utf8')
  }

  private reserve(n: number): void {
    if (this.at + n <= this.buf.length) return
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n))
    this.buf.copy(next, 0, 0, this.at)
    this.buf = next
  }
}

/**
 * Parses and validates a whole data.dsync. Anything a hostile upstream could use to make a
 * client write outside the tree, or anything inconsistent, is refused with file and line.
 */
export function parseManifest(data: Buffer, file: string): Manifest {
  const parser = new ManifestParser(file)
  if (pushLines(parser, data) < data.length) unterminated(parser)
  return parser.finish()
}

/**
 * parseManifest over a file read a chunk at a time: a client that parked a checked data.dsync
 * on disk parses it without holding its bytes (153 MB at 1M files) beside the entries it builds.
 */
export function parseManifestFile(path: string, file: string): Manifest {
  const parser = new ManifestParser(file, true)
  const fd = openSync(path, 'r')
  try {
    const chunk = Buffer.allocUnsafe(READ_CHUNK)
    let held = 0
    for (;;) {
      const n = readSync(fd, chunk, held, chunk.length - held, null)
      const data = chunk.subarray(0, held + n)
      const used = pushLines(parser, data)
      if (n === 0) {
        if (used < data.length) unterminated(parser)
        return parser.finish()
      }
      // A line longer than what is left of the chunk once its start moved to the front is too long.
      if (used === 0 && data.length === chunk.length) parser.fail(parser.lineNo + 1, 'line too long')
      held = data.copy(chunk, 0, used)
    }
  } finally {
    closeSync(fd)
  }
}

/** Bytes read at a time by parseManifestFile: many lines, each at most MAX_LINE. */
const READ_CHUNK = 1 << 20

/**
 * Hands each whole line of `data` to the parser; returns where the unfinished last line starts.
 * The lines' bytes go into the checksum here, a run of lines at once up to the END line (two
 * hash updates per line were ~0.1 s of a 200,000-file list's parse).
 */
function pushLines(parser: ManifestParser, data: Buffer): number {
  let start = 0
  let from = 0
  while (start < data.length) {
    const end = data.indexOf(0x0a, start)
    if (end === -1) break
    if (end - start > MAX_LINE) parser.fail(parser.lineNo + 1, 'line too long')
    if (data[start] === 0x45 && data[start + 1] === 0x4e && data[start + 2] === 0x44 && data[start + 3] === TAB && !parser.hasEnded) {
      parser.hashBytes(data.subarray(from, start))
      from = end + 1
    }
    parser.push(data.subarray(start, end), true)
    start = end + 1
  }
  if (!parser.hasEnded) parser.hashBytes(data.subarray(from, start))
  return start
}

function unterminated(parser: ManifestParser): never {
  parser.fail(parser.lineNo + 1, parser.hasEnded ? 'data after END line' : 'missing END line (file truncated?)')
}

/**
 * Digests are carved from slabs of their own. Buffer.from() would take them from Node's shared
 * 8 KiB pool, where each one keeps its whole slab alive, with every transient buffer made
 * beside it (the sort key of each path below): at 1M entries ~94 MB of external memory instead
 * of the 32 MB the digests are.
 */
const SLAB = 1 << 16
let slab = Buffer.allocUnsafeSlow(SLAB)
let slabAt = 0

/** Decodes a digest into the current slab (`slab`); returns where it starts there. */
function digestAt(hex: string): number {
  if (slabAt + 32 > SLAB) {
    slab = Buffer.allocUnsafeSlow(SLAB)
    slabAt = 0
  }
  slab.write(hex, slabAt, 32, 'hex')
  slabAt += 32
  return slabAt - 32
}

/**
 * The path field (the sixth) decoded from the line's bytes on its own: a field of the split
 * line is a slice that keeps the whole line's string alive, ~120 bytes more for each of a
 * million entries a client holds. The fields before it are checked ASCII by then.
 */
function ownPath(raw: Buffer, f: string[]): string {
  const at = f[0].length + f[1].length + f[2].length + f[3].length + f[4].length + 5
  const end = f.length > 6 ? raw.indexOf(0x09, at) : raw.length
  return raw.toString('utf8', at, end)
}

const TAB = 0x09
const SLASH = 0x2f
const DOT = 0x2e
const BACKSLASH = 0x5c
const DSYNC_BYTES = Buffer.from(DSYNC_DIR, 'latin1')

/** Whether `path` is the ASCII bytes `line[at, end)`. */
function sameAscii(path: string, line: Uint8Array, at: number, end: number): boolean {
  if (path.length !== end - at) return false
  for (let i = 0; i < path.length; i++) if (path.charCodeAt(i) !== line[at + i]) return false
  return true
}

/** The path of the line parseEntryLine read last: the string it made, for ManifestParser's checks. */
let parsedPath = ''

/**
 * A row of `table` for a file or hardlink line: named within its folder's entry when `folders`
 * (the directories listed so far) has it, else by its whole path (the parser refuses a file
 * whose folder is not listed anyway).
 */
function compactEntry(table: SlabTable, type: 'f' | 'h', path: string, mode: number, size: number, mtime: number, hex: string, folders?: ReadonlyMap<string, ManifestEntry>): SlabEntry {
  const slash = path.lastIndexOf('/')
  const folder = slash > 0 ? folders?.get(path.slice(0, slash)) : undefined
  return table.add(type, folder, folder ? path.slice(slash + 1) : path, mode, size, mtime, hex)
}

/**
 * Line-at-a-time validation, so that a reader can check a data.dsync as it streams in
 * (the format is sorted and each line stands alone; only the END checksum needs the whole).
 */
export class ManifestParser {
  lineNo = 0
  private readonly hash = createHash('sha256')
  private header: Partial<ManifestHeader> = {}
  private inHeader = true
  private ended: Buffer | undefined
  private readonly entries: ManifestEntry[] = []
  /**
   * The directories' paths: every parent must be one. Not a map of every entry (at 1M files a
   * Map of a million paths while the list is parsed); a hardlink's target, rare, is found by
   * a binary search of the sorted entries (`listed`).
   */
  private readonly dirs = new Map<string, ManifestEntry>()
  private readonly seenHeader = new Set<string>()
  /** The last entry's path as UTF-8 bytes (`previousLength` of them; -1: none yet), for the order check. */
  private previous = Buffer.allocUnsafe(MAX_LINE)
  private previousLength = -1
  /** The folder of the last file line fileLineFast read (files come folder by folder). */
  private lastFolder: ManifestEntry | undefined

  /** Files and hardlinks as rows of one table (parseManifestFile: the client's list), made once the header is read. */
  private table: SlabTable | undefined

  /** `compact`: files and hardlinks as rows of a SlabTable (slab-entry.ts), not objects of their own. */
  constructor(readonly file: string, private readonly compact = false) {}

  get hasEnded(): boolean {
    return this.ended !== undefined
  }

  fail(line: number, reason: string): never {
    throw new DsyncError(ExitCode.badData, 'manifest.corrupt', { file: this.file, line, reason })
  }

  /** One line, without its newline. `hashedByCaller`: pushLines puts its bytes into the checksum, not this. */
  push(raw: Buffer, hashedByCaller = false): void {
    if (this.table !== undefined && raw[0] === 0x66 && !this.inHeader && this.ended === undefined && this.fileLineFast(raw, this.table)) {
      this.lineNo++
      if (!hashedByCaller) this.hash.update(raw).update('\n')
      return
    }
    const line = ++this.lineNo
    if (this.ended) this.fail(line, 'data after END line')
    const text = raw.toString('utf8')
    if (text.includes('\uFFFD') && !raw.equals(Buffer.from(text, 'utf8'))) this.fail(line, 'not valid UTF-8')
    if (text.startsWith('END\t')) {
      if (this.inHeader) this.fail(line, 'END before the header ended')
      const sum = this.hash.digest()
      const claimed = text.slice(4)
      if (!/^[0-9a-f]{64}$/.test(claimed) || claimed !== sum.toString('hex')) this.fail(line, 'checksum mismatch')
      this.ended = sum
      return
    }
    if (!hashedByCaller) this.hash.update(raw).update('\n')
    if (line === 1) {
      if (text !== `${MAGIC} ${VERSION}`) {
        this.fail(line, text.startsWith(MAGIC) ? `unsupported version "${text.slice(MAGIC.length + 1)}"` : 'not a data.dsync file')
      }
      this.header.version = VERSION
      return
    }
    if (this.inHeader) return this.pushHeader(line, text)
    this.pushEntry(line, text, raw)
  }

  /** Bytes of whole lines (newlines included) before the END line, into the checksum: pushLines. */
  hashBytes(bytes: Buffer): void {
    if (bytes.length > 0) this.hash.update(bytes)
  }

  private pushHeader(line: number, text: string): void {
    if (text === '') {
      for (const key of ['pieceLength', 'entries', 'files', 'bytes'] as const) {
        if (this.header[key] === undefined) this.fail(line, `header lacks ${key}`)
      }
      this.inHeader = false
      if (this.compact) this.table = new SlabTable(this.header.files! + 64)
      return
    }
    const m = /^([a-z-]+) (\d{1,16})$/.exec(text)
    if (!m) this.fail(line, 'malformed header line')
    const value = Number(m[2])
    if (!Number.isSafeInteger(value)) this.fail(line, 'header value too large')
    if (this.seenHeader.has(m[1])) this.fail(line, `header field ${m[1]} repeated`)
    this.seenHeader.add(m[1])
    switch (m[1]) {
      case 'piece-length':
        if (value < 16384 || (value & (value - 1)) !== 0) this.fail(line, 'piece length must be a power of two >= 16384')
        this.header.pieceLength = value
        break
      case 'entries': this.header.entries = value; break
      case 'files': this.header.files = value; break
      case 'bytes': this.header.bytes = value; break
      default: break // newer writers may add fields; version 1 readers ignore them
    }
  }

  private pushEntry(line: number, text: string, raw: Buffer): void {
    const entry = parseEntryLine(text, raw, this.table, this.dirs)
    if (typeof entry === 'string') this.fail(line, entry)
    if (entry.type === 'h') {
      const file = this.listed(entry.target!)
      if (file?.type !== 'f') this.fail(line, 'hardlink to a file not listed before it')
      if (file.size !== entry.size || !file.sha256!.equals(entry.sha256!)) this.fail(line, 'hardlink differs from its file in size or SHA-256')
    }
    // The line's own path string (a SlabEntry's `path` would make another).
    const path = parsedPath
    const key = Buffer.from(path, 'utf8')
    if (this.previousLength >= 0 && Buffer.compare(this.previous.subarray(0, this.previousLength), key) >= 0) this.fail(line, 'entries not sorted or repeated')
    if (key.length > this.previous.length) this.previous = Buffer.allocUnsafe(key.length)
    this.previousLength = key.copy(this.previous)
    const slash = path.lastIndexOf('/')
    // Every ancestor must be a directory listed in the manifest: no path can pass through a
    // symlink or a file, so a client never follows a link while writing.
    if (slash > 0 && !this.dirs.has(path.slice(0, slash))) this.fail(line, 'parent folder is not listed as a directory')
    if (entry.type === 'd') this.dirs.set(path, entry)
    this.entries.push(entry)
  }

  /**
   * A plain file line of the client's list (`table`), read from its bytes: type `f`, six fields,
   * a path of printable ASCII but `\\` (nothing to unescape). Nearly every line of a mirror's
   * list is one. Every check parseEntryLine and pushEntry make for such a line is made here on
   * the bytes, and the row goes into the table with no string made (the split, its seven strings,
   * four regular expressions, the path decoded twice and sliced three times were ~1 s of a 200,000-file
   * bootstrap's main thread, docs/ARCHITECTURE.md "Session 24 (issue 12, small client, h12s24)").
   * False, with nothing changed, for any other line or any check that fails: `push` then reads it
   * the general way, which gives the reason.
   */
  private fileLineFast(line: Buffer, table: SlabTable): boolean {
    const n = line.length
    // f TAB mode(4) TAB size TAB mtime TAB hex(64) TAB path: at least 2 + 5 + 2 + 2 + 65 + 1 bytes.
    if (n < 77 || line[1] !== TAB || line[6] !== TAB) return false
    let mode = 0
    for (let i = 2; i < 6; i++) {
      const d = line[i] - 0x30
      if (d < 0 || d > 7) return false
      mode = mode * 8 + d
    }
    // Size and mtime: 1-16 digits (mtime may start with '-'); past 2^53 the general way
    // (Number's rounding) decides. Summed digit by digit the value is exact below that.
    let i = 7
    let size = 0
    while (i < n && line[i] !== TAB) {
      const d = line[i] - 0x30
      if (d < 0 || d > 9) return false
      size = size * 10 + d
      i++
    }
    if (i === 7 || i - 7 > 16 || size > Number.MAX_SAFE_INTEGER) return false
    i++
    const negative = line[i] === 0x2d
    if (negative) i++
    const digitsAt = i
    let mtime = 0
    while (i < n && line[i] !== TAB) {
      const d = line[i] - 0x30
      if (d < 0 || d > 9) return false
      mtime = mtime * 10 + d
      i++
    }
    if (i === digitsAt || i - digitsAt > 16 || mtime > Number.MAX_SAFE_INTEGER) return false
    if (negative) mtime = -mtime
    const hexAt = ++i
    if (hexAt + 65 >= n || line[hexAt + 64] !== TAB) return false
    for (let k = hexAt; k < hexAt + 64; k++) {
      const c = line[k]
      if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false
    }
    // The path: printable ASCII but `\` (so escaping changes nothing and no tab starts a 7th
    // field), not absolute, no empty, `.` or `..` segment, not .dsync or under it.
    const at = hexAt + 65
    let segment = at
    let slash = -1
    for (let k = at; k <= n; k++) {
      const c = k < n ? line[k] : SLASH
      if (c === SLASH) {
        const len = k - segment
        if (len === 0 || (line[segment] === DOT && (len === 1 || (len === 2 && line[segment + 1] === DOT)))) return false
        if (k < n) slash = k
        segment = k + 1
      } else if (c < 0x20 || c > 0x7e || c === BACKSLASH) return false
    }
    if (n - at >= DSYNC_BYTES.length && line.compare(DSYNC_BYTES, 0, DSYNC_BYTES.length, at, at + DSYNC_BYTES.length) === 0 &&
      (n - at === DSYNC_BYTES.length || line[at + DSYNC_BYTES.length] === SLASH)) return false
    // In order after the entry before (its bytes, as pushEntry compares them).
    const prev = this.previous
    const prevLength = this.previousLength
    if (prevLength >= 0) {
      const len = n - at
      const most = Math.min(prevLength, len)
      let k = 0
      while (k < most && prev[k] === line[at + k]) k++
      if (k < most ? prev[k] > line[at + k] : prevLength >= len) return false
    }
    // Its folder, listed before it (the last one found answers most lines).
    let folder: ManifestEntry | undefined
    if (slash > 0) {
      folder = this.lastFolder
      if (folder === undefined || !sameAscii(folder.path, line, at, slash)) {
        folder = this.dirs.get(line.toString('latin1', at, slash))
        if (folder === undefined) return false
        this.lastFolder = folder
      }
    }
    const nameAt = folder === undefined ? at : slash + 1
    this.entries.push(table.addAscii(folder, line, nameAt, n, mode, size, mtime, hexAt))
    if (n - at > prev.length) this.previous = Buffer.allocUnsafe(n - at)
    this.previousLength = line.copy(this.previous, 0, at, n)
    return true
  }

  /** The entry listed before at `path` (entries are in strict UTF-8 byte order by then). */
  private listed(path: string): ManifestEntry | undefined {
    const key = Buffer.from(path, 'utf8')
    let lo = 0
    let hi = this.entries.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      const c = Buffer.compare(Buffer.from(this.entries[mid].path, 'utf8'), key)
      if (c === 0) return this.entries[mid]
      if (c < 0) lo = mid + 1
      else hi = mid - 1
    }
    return undefined
  }

  finish(): Manifest {
    if (!this.ended) this.fail(Math.max(1, this.lineNo), 'missing END line (file truncated?)')
    const h = this.header as ManifestHeader
    this.table?.seal()
    const counted = headerFor(this.entries, h.pieceLength)
    for (const key of ['entries', 'files', 'bytes'] as const) {
      if (counted[key] !== h[key]) this.fail(this.lineNo, `header says ${key} ${h[key]}, found ${counted[key]}`)
    }
    return { header: h, entries: this.entries, digest: this.ended }
  }
}

/**
 * One entry line by the rules that concern it alone (fields, mode, size, mtime, a safe path
 * escaped as the writer escapes it, not under .dsync/, SHA-256, link target); a reason when it
 * breaks one. The list's own rules (order, parents, hardlink targets) are ManifestParser's,
 * and the delta plan's (src/sync/delta-plan.ts).
 */
export function parseEntryLine(text: string, raw?: Buffer, table?: SlabTable, folders?: ReadonlyMap<string, ManifestEntry>): ManifestEntry | string {
  const f = text.split('\t')
  if (f.length < 6 || f.length > 7) return `expected 6 or 7 fields, got ${f.length}`
  const type = f[0] as EntryType
  if (!['f', 'd', 'l', 'h'].includes(type)) return `unknown entry type "${f[0]}"`
  if (!/^[0-7]{4}$/.test(f[1])) return 'bad mode'
  if (!/^\d{1,16}$/.test(f[2]) || !Number.isSafeInteger(Number(f[2]))) return 'bad size'
  if (!/^-?\d{1,16}$/.test(f[3])) return 'bad mtime'
  const path = unescapePath(f[5])
  if (path === undefined || !isSafeRelativePath(path)) return 'unsafe or malformed path'
  // One spelling per path: the writer's escaping exactly, so equal trees give equal bytes.
  if (escapePath(path) !== f[5]) return 'path not escaped as the format requires'
  // .dsync/ holds the manifest itself (also the torrent's first file) and the host's lock
  // and cache; a listed entry there would overwrite them.
  if (path === DSYNC_DIR || path.startsWith(DSYNC_DIR + '/')) return `reserved path ${DSYNC_DIR}`
  const own = raw && path === f[5] ? ownPath(raw, f) : path
  const hashed = type === 'f' || type === 'h'
  if (hashed && !/^[0-9a-f]{64}$/.test(f[4])) return 'bad SHA-256'
  if (!hashed && f[4] !== '-') return 'only files carry a SHA-256'
  parsedPath = own
  // A file's digest is in the literal: added after it, it went to a separate property store
  // (~40 bytes more for each of a million entries a client holds). digestAt may start a new
  // slab: which one holds the digest is read after it.
  const at = hashed && !table ? digestAt(f[4]) : -1
  const entry: ManifestEntry = !hashed
    ? { type, path: own, mode: parseInt(f[1], 8), size: Number(f[2]), mtime: Number(f[3]) }
    : table
      ? compactEntry(table, type as 'f' | 'h', own, parseInt(f[1], 8), Number(f[2]), Number(f[3]), f[4], folders)
      : { type, path: own, mode: parseInt(f[1], 8), size: Number(f[2]), mtime: Number(f[3]), sha256: slab.subarray(at, at + 32) }
  const needsTarget = type === 'l' || type === 'h'
  if (needsTarget !== (f.length === 7)) return needsTarget ? 'missing link target' : 'unexpected link target'
  if (needsTarget) {
    const target = unescapePath(f[6])
    if (target === undefined || target === '' || target.includes('\0') || escapePath(target) !== f[6]) return 'malformed link target'
    if (type === 'l' && entry.size !== Buffer.byteLength(target)) return 'symlink size differs from its target length'
    if (type === 'l' && entry.mode !== 0o777) return 'symlink mode must be 0777'
    entry.target = target
  }
  if (type === 'd' && entry.size !== 0) return 'directory with a size'
  return entry
}
