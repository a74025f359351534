import type { ManifestEntry } from './entry.js'

/**
 * The client's file and hardlink entries (parseManifestFile) as one table of columns, a row
 * each in list order: no object is kept per file. At 1M files an object per entry (64 bytes,
 * five fields) and the arrays of them the plan, the fetch list and the shards held were ~85 MiB
 * of a bootstrap's heap through its transfer (docs/SCALE.md, h11m17's heap snapshot); here a row
 * is 26 bytes of typed arrays, and holders keep row numbers (src/sync/entry-list.ts).
 * `entry(row)` makes a SlabEntry, a two-field view whose fields are read from the columns,
 * for a consumer that asks for a ManifestEntry; it is dropped when that consumer is done.
 *
 * Each row's record is packed into slabs of 64 KiB: the digest (32 bytes); the byte length of
 * the name's rest (2 bytes, little-endian); how many characters (UTF-16 units) the name shares
 * with its folder's name at its start (1 byte: a Debian pool's `pool/main/p/pkg/pkg_1.0-1_amd64.deb`);
 * the rest's UTF-8 bytes. A record is at most 35 + 20,000 bytes (format.ts's MAX_LINE), so one
 * always fits an empty slab. Its folder is the folder's own entry (a plain object the list keeps
 * anyway), so a path is made from the folder's path and the record each time it is read.
 */
export class SlabTable {
  rows = 0
  /** Bits 0-11 the mode, 12 set for a hardlink. */
  private kinds: Uint16Array
  /** The row's folder in `folders`, -1: the record's name is the whole path. */
  private folderOf: Int32Array
  private sizes: Float64Array
  private mtimes: Float64Array
  /** Slab number * 2^16 + where the record starts in it. */
  private records: Uint32Array
  private readonly folders: ManifestEntry[] = []
  /** Folder entry -> its number in `folders`, while rows are added (dropped by `seal`). */
  private folderIds: Map<ManifestEntry, number> | undefined = new Map()
  private readonly slabs: Buffer[] = []
  private slabAt = RECORD_SLAB
  /** Hardlinks' targets by row (a few in a mirror). */
  private readonly targets = new Map<number, string>()

  /** `expected`: the rows to make room for at once (the header's file count). */
  constructor(expected = 1024) {
    const n = Math.max(16, Math.min(expected, 1 << 21))
    this.kinds = new Uint16Array(n)
    this.folderOf = new Int32Array(n)
    this.sizes = new Float64Array(n)
    this.mtimes = new Float64Array(n)
    this.records = new Uint32Array(n)
  }

  /**
   * A row for a file or hardlink whose digest is `hex` (as the line carries it) and whose name,
   * within `folder` (undefined: `name` is the whole path), is `name`. Returns its entry.
   */
  add(type: 'f' | 'h', folder: ManifestEntry | undefined, name: string, mode: number, size: number, mtime: number, hex: string): SlabEntry {
    if (this.rows === this.kinds.length) this.grow()
    const shared = folder === undefined ? 0 : sharedStart(folder.path, name)
    const rest = shared === 0 ? name : name.slice(shared)
    const restBytes = Buffer.byteLength(rest, 'utf8')
    const at = this.recordAt(restBytes, shared)
    const slab = this.slabs[this.slabs.length - 1]
    slab.write(hex, at, 32, 'hex')
    slab.write(rest, at + 35, restBytes, 'utf8')
    return this.addRow(mode | (type === 'h' ? HARDLINK_BIT : 0), folder, size, mtime, at)
  }

  /**
   * `add` for a file whose line the parser checked byte by byte (format.ts, fileLineFast): the
   * digest is the 64 lowercase hex bytes of `line` at `hexAt`, the name's ASCII bytes are
   * `line[nameAt, nameEnd)`. No string is made: the same record as `add` of those as strings.
   */
  addAscii(folder: ManifestEntry | undefined, line: Uint8Array, nameAt: number, nameEnd: number, mode: number, size: number, mtime: number, hexAt: number): SlabEntry {
    if (this.rows === this.kinds.length) this.grow()
    const shared = folder === undefined ? 0 : sharedStartAscii(folder.path, line, nameAt, nameEnd)
    const restBytes = nameEnd - nameAt - shared
    const at = this.recordAt(restBytes, shared)
    const slab = this.slabs[this.slabs.length - 1]
    for (let i = 0; i < 32; i++) slab[at + i] = (HEX_VALUE[line[hexAt + 2 * i]] << 4) | HEX_VALUE[line[hexAt + 2 * i + 1]]
    slab.set(line.subarray(nameAt + shared, nameEnd), at + 35)
    return this.addRow(mode, folder, size, mtime, at)
  }

  /**
   * Room for one record (32-byte digest, the rest's length, the bytes shared with the folder's
   * path, the rest) in the last slab, or a new one; its length fields written, the digest and the
   * rest left to the caller. Returns where the record starts.
   */
  private recordAt(restBytes: number, shared: number): number {
    if (this.slabAt + 35 + restBytes > RECORD_SLAB) {
      if (this.slabs.length === MAX_SLABS) throw new Error('SlabTable: too many records')
      this.slabs.push(Buffer.allocUnsafeSlow(RECORD_SLAB))
      this.slabAt = 0
    }
    const slab = this.slabs[this.slabs.length - 1]
    const at = this.slabAt
    slab[at + 32] = restBytes & 0xff
    slab[at + 33] = restBytes >>> 8
    slab[at + 34] = shared
    this.slabAt += 35 + restBytes
    return at
  }

  /** The row of the record at `at` of the last slab. */
  private addRow(kind: number, folder: ManifestEntry | undefined, size: number, mtime: number, at: number): SlabEntry {
    const row = this.rows++
    this.kinds[row] = kind
    this.folderOf[row] = folder === undefined ? -1 : this.folderId(folder)
    this.sizes[row] = size
    this.mtimes[row] = mtime
    this.records[row] = (this.slabs.length - 1) * RECORD_SLAB + at
    return new SlabEntry(this, row)
  }

  /**
   * No more rows: the map of folders goes, and the columns are cut to the rows when more than
   * an eighth of them is spare (the header's count was too high, or hardlinks grew them).
   */
  seal(): void {
    this.folderIds = undefined
    if (this.kinds.length - this.rows <= this.kinds.length / 8) return
    this.kinds = this.kinds.slice(0, this.rows)
    this.folderOf = this.folderOf.slice(0, this.rows)
    this.sizes = this.sizes.slice(0, this.rows)
    this.mtimes = this.mtimes.slice(0, this.rows)
    this.records = this.records.slice(0, this.rows)
  }

  /** Row `row`'s entry: a fresh view (compare two with sameEntry, not ===). */
  entry(row: number): SlabEntry {
    return new SlabEntry(this, row)
  }

  typeAt(row: number): 'f' | 'h' {
    return this.kinds[row] & HARDLINK_BIT ? 'h' : 'f'
  }

  modeAt(row: number): number {
    return this.kinds[row] & 0o7777
  }

  sizeAt(row: number): number {
    return this.sizes[row]
  }

  mtimeAt(row: number): number {
    return this.mtimes[row]
  }

  targetAt(row: number): string | undefined {
    return this.targets.get(row)
  }

  setTarget(row: number, target: string): void {
    this.targets.set(row, target)
  }

  pathAt(row: number): string {
    const slab = this.slabs[this.records[row] >>> 16]
    const at = (this.records[row] & 0xffff) + 32
    const rest = slab.toString('utf8', at + 3, at + 3 + (slab[at] | (slab[at + 1] << 8)))
    const f = this.folderOf[row]
    if (f < 0) return rest
    const folder = this.folders[f].path
    const shared = slab[at + 2]
    if (shared === 0) return `${folder}/${rest}`
    const from = folder.lastIndexOf('/') + 1
    return `${folder}/${folder.slice(from, from + shared)}${rest}`
  }

  /** The path of row `row`'s folder ('' at the top): its folder entry's own string, no path made. */
  parentAt(row: number): string {
    const f = this.folderOf[row]
    if (f >= 0) return this.folders[f].path
    const path = this.pathAt(row)
    return path.slice(0, Math.max(0, path.lastIndexOf('/')))
  }

  /** Row `row`'s digest: a view of its record (made at each call). */
  digestAt(row: number): Buffer {
    const at = this.records[row] & 0xffff
    return this.slabs[this.records[row] >>> 16].subarray(at, at + 32)
  }

  /** Whether row `row`'s digest is `digest`'s first 32 bytes, compared in place (no view made). */
  digestEquals(row: number, digest: Uint8Array): boolean {
    const slab = this.slabs[this.records[row] >>> 16]
    const at = this.records[row] & 0xffff
    for (let i = 0; i < 32; i++) if (slab[at + i] !== digest[i]) return false
    return true
  }

  /** The first four bytes of row `row`'s digest as one number (a hash table's slot: content-ids.ts). */
  digestHead(row: number): number {
    const slab = this.slabs[this.records[row] >>> 16]
    const at = this.records[row] & 0xffff
    return slab[at] | (slab[at + 1] << 8) | (slab[at + 2] << 16) | (slab[at + 3] << 24)
  }

  private folderId(folder: ManifestEntry): number {
    const ids = this.folderIds
    if (!ids) throw new Error('SlabTable: sealed')
    let id = ids.get(folder)
    if (id === undefined) {
      id = this.folders.length
      this.folders.push(folder)
      ids.set(folder, id)
    }
    return id
  }

  private grow(): void {
    const n = Math.ceil(this.kinds.length * 1.5)
    const wider = <T extends Uint16Array | Int32Array | Float64Array | Uint32Array>(a: T, make: (n: number) => T): T => {
      const b = make(n)
      b.set(a)
      return b
    }
    this.kinds = wider(this.kinds, k => new Uint16Array(k))
    this.folderOf = wider(this.folderOf, k => new Int32Array(k))
    this.sizes = wider(this.sizes, k => new Float64Array(k))
    this.mtimes = wider(this.mtimes, k => new Float64Array(k))
    this.records = wider(this.records, k => new Uint32Array(k))
  }
}

const RECORD_SLAB = 1 << 16
/** Slab numbers fit the 16 high bits of a record's place. */
const MAX_SLABS = 1 << 16
const HARDLINK_BIT = 1 << 12

/**
 * A file's or hardlink's entry of the client's list: row `row` of `table`, every field read
 * from the table's columns when asked (`path` and `sha256` made at each read). Two fields, so
 * one is cheap to make and to drop; the table, not this object, is what the client keeps.
 * Read-only but for a hardlink's `target`, set by the parser: a client never rewrites an
 * upstream entry; users that copy entries (`{ ...e }`) must not be given these.
 */
export class SlabEntry implements ManifestEntry {
  constructor(readonly table: SlabTable, readonly row: number) {}

  get type(): 'f' | 'h' {
    return this.table.typeAt(this.row)
  }

  get mode(): number {
    return this.table.modeAt(this.row)
  }

  get size(): number {
    return this.table.sizeAt(this.row)
  }

  get mtime(): number {
    return this.table.mtimeAt(this.row)
  }

  get path(): string {
    return this.table.pathAt(this.row)
  }

  get sha256(): Buffer {
    return this.table.digestAt(this.row)
  }

  get target(): string | undefined {
    return this.table.targetAt(this.row)
  }

  set target(t: string | undefined) {
    if (t !== undefined) this.table.setTarget(this.row, t)
  }

  /** Whether this entry's digest is `digest`'s first 32 bytes, compared in the slab (no view made). */
  sha256Equals(digest: Uint8Array): boolean {
    return this.table.digestEquals(this.row, digest)
  }
}

/**
 * Whether `a` and `b` are the same upstream entry: the same object, or views of the same row of
 * one table (a SlabEntry is made afresh at each read of a row).
 */
export function sameEntry(a: object | undefined, b: object | undefined): boolean {
  if (a === b) return a !== undefined
  return a instanceof SlabEntry && b instanceof SlabEntry && a.table === b.table && a.row === b.row
}

/**
 * How many characters `name` starts with that `folderPath`'s last name starts with too (at most
 * 255, and never half of a surrogate pair: the rest is encoded as UTF-8 on its own).
 */
/** sharedStart for a name given as ASCII bytes (`line[at, end)`): no surrogate can be cut. */
function sharedStartAscii(folderPath: string, line: Uint8Array, at: number, end: number): number {
  const from = folderPath.lastIndexOf('/') + 1
  const most = Math.min(255, folderPath.length - from, end - at)
  let n = 0
  while (n < most && folderPath.charCodeAt(from + n) === line[at + n]) n++
  return n
}

/** A lowercase hex digit's byte -> its value (format.ts checked the digits before). */
const HEX_VALUE = new Uint8Array(256)
for (let i = 0; i < 10; i++) HEX_VALUE[0x30 + i] = i
for (let i = 0; i < 6; i++) HEX_VALUE[0x61 + i] = 10 + i

function sharedStart(folderPath: string, name: string): number {
  const from = folderPath.lastIndexOf('/') + 1
  const most = Math.min(255, folderPath.length - from, name.length)
  let n = 0
  while (n < most && folderPath.charCodeAt(from + n) === name.charCodeAt(n)) n++
  if (n > 0 && (name.charCodeAt(n - 1) & 0xfc00) === 0xd800) n--
  return n
}
