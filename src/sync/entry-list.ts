import type { ManifestEntry } from '../manifest/entry.js'
import { SlabEntry, sameEntry, type SlabTable } from '../manifest/slab-entry.js'
import { parentOf } from './tree-paths.js'

/**
 * A list of upstream entries that a pull holds from its plan to its apply (`plan.place`, the
 * fetch list's first entries, a shard's files): the client's file entries (rows of one
 * SlabTable) are kept as row numbers, 4 bytes each, with no object per file; `at(i)` makes the
 * entry's view when a consumer asks for it. At 1M files three arrays of a million entries kept
 * a million 64-byte objects alive through the transfer (docs/SCALE.md, h11m17's snapshot).
 * An entry of another kind (a plain object: hosts' and the delta route's lists, tests) turns the
 * list into an array of objects, as before.
 */
export class EntryList implements Iterable<ManifestEntry> {
  length = 0
  private table: SlabTable | undefined
  private rows: Int32Array
  /** Set once an entry that is not a row of `table` came: then every entry is here. */
  private objects: ManifestEntry[] | undefined

  constructor(expected = 16) {
    this.rows = new Int32Array(Math.max(expected, 16))
  }

  /** `entries[from, to)` as a list. */
  static of(entries: readonly ManifestEntry[], from = 0, to = entries.length): EntryList {
    const list = new EntryList(to - from)
    for (let i = from; i < to; i++) list.push(entries[i])
    list.trim()
    return list
  }

  push(e: ManifestEntry): void {
    if (!this.objects) {
      if (e instanceof SlabEntry && (this.table ??= e.table) === e.table) {
        if (this.length === this.rows.length) this.rows = grown(this.rows, Math.max(16, this.length * 2))
        this.rows[this.length++] = e.row
        return
      }
      this.objects = []
      for (let i = 0; i < this.length; i++) this.objects.push(this.table!.entry(this.rows[i]))
      this.rows = new Int32Array(0)
    }
    this.objects.push(e)
    this.length++
  }

  /** Entry `i` (0 <= i < length); a fresh view for a row (compare entries with sameEntry). */
  at(i: number): ManifestEntry {
    return this.objects ? this.objects[i] : this.table!.entry(this.rows[i])
  }

  /** Entry `i`'s digest is `digest`'s first 32 bytes (files and hardlinks; no view made for a row). */
  digestEquals(i: number, digest: Uint8Array): boolean {
    if (!this.objects) return this.table!.digestEquals(this.rows[i], digest)
    const e = this.objects[i]
    if (e instanceof SlabEntry) return e.sha256Equals(digest)
    const own = e.sha256!
    for (let k = 0; k < 32; k++) if (own[k] !== digest[k]) return false
    return true
  }

  /** The path of entry `i`'s folder ('' at the top); for a row, its folder's own string (no path made). */
  parentAt(i: number): string {
    return this.objects ? parentOf(this.objects[i].path) : this.table!.parentAt(this.rows[i])
  }

  /** Entry `i`'s digest's bytes (a view of the table's record for a row). */
  digestAt(i: number): Uint8Array {
    return this.objects ? this.objects[i].sha256! : this.table!.digestAt(this.rows[i])
  }

  /**
   * Entry `i` is `e`: the same row of the same table, or the same object. A list turned into
   * objects holds views of the rows it had: those are compared by row (sameEntry), not identity.
   */
  isAt(i: number, e: ManifestEntry): boolean {
    if (this.objects) return sameEntry(this.objects[i], e)
    return e instanceof SlabEntry && e.table === this.table && e.row === this.rows[i]
  }

  /** The spare room growing left goes (held from the plan to the apply). */
  trim(): void {
    if (this.objects) this.objects = this.objects.slice()
    else if (this.rows.length > this.length) this.rows = this.rows.slice(0, this.length)
  }

  *[Symbol.iterator](): Iterator<ManifestEntry> {
    for (let i = 0; i < this.length; i++) yield this.at(i)
  }
}

function grown(a: Int32Array, n: number): Int32Array {
  const b = new Int32Array(n)
  b.set(a)
  return b
}
