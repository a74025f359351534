import type { ManifestEntry } from '../manifest/entry.js'
import { ContentIds } from './content-ids.js'
import { EntryList } from './entry-list.js'

/**
 * The contents a plan downloads: each distinct SHA-256 once, with the first entry holding it
 * (whose mode and mtime its staged file gets). Read like a Map keyed by SHA-256 hex (what the
 * routes, staging and the delta chain ask), but no hex string is kept: contents are numbered
 * by their digests' bytes (ContentIds, reading the first entries' digests) and a hex name is
 * made only when one is asked for. At 1M files the Map of 64-character keys was ~110 MB of the
 * client's heap, and the Set of entries whose mode the stage worker set another ~40 MB; here
 * they are ~20 bytes and one byte per content (docs/SCALE.md, "Memory"). The first entries
 * are an EntryList: the client's file entries as row numbers, no object kept per content.
 */
export class FetchList implements ReadonlyMap<string, ManifestEntry> {
  private readonly ids: ContentIds
  private firsts: EntryList
  /** By content number: 1 when the staged file carries its first entry's mode and mtime. */
  private metaSet = new Uint8Array(0)
  /** idOfHex's decoded name. */
  private readonly hexDigest = Buffer.allocUnsafeSlow(32)
  readonly [Symbol.toStringTag] = 'FetchList'

  constructor(expected?: number) {
    this.firsts = new EntryList(expected)
    // The digests are the first entries' own (no copy of 32 MB at 1M files); a row's is
    // compared where it lies, without a view per probe.
    this.ids = new ContentIds(expected, id => this.firsts.digestAt(id), (id, digest) => this.firsts.digestEquals(id, digest))
  }

  get size(): number {
    return this.firsts.length
  }

  /** Lists `entry`'s content (a file or hardlink with its digest); false when it was listed already. */
  add(entry: ManifestEntry): boolean {
    // ids.add reads the digests of the entries listed so far: this one is listed first.
    const digest = entry.sha256!
    if (this.ids.get(digest) >= 0) return false
    this.firsts.push(entry)
    this.ids.add(digest)
    return true
  }

  /**
   * Gives back the spare room the list of first entries grew (an array grown by push has up to
   * half its length again: ~2.3 MiB at 1M contents, held from the plan to the apply).
   */
  trim(): void {
    this.firsts.trim()
  }

  /** The content's number in this list (0 .. size - 1, in the order added), -1 when it is not listed. */
  idOf(digest: Uint8Array): number {
    return this.ids.get(digest)
  }

  /** The entry the content is fetched for, by its digest's bytes (no hex string made). */
  entryOf(digest: Uint8Array): ManifestEntry | undefined {
    const id = this.ids.get(digest)
    return id < 0 ? undefined : this.firsts.at(id)
  }

  get(hex: string): ManifestEntry | undefined {
    const id = this.idOfHex(hex)
    return id < 0 ? undefined : this.firsts.at(id)
  }

  /**
   * The content's number by its hex name, -1 when it is not listed. Decoded into one reused
   * buffer: asked once per staged file of a pull. A name that is not 64 hex digits decodes short.
   */
  idOfHex(hex: string): number {
    return hex.length === 64 && this.hexDigest.write(hex, 0, 32, 'hex') === 32 ? this.ids.get(this.hexDigest) : -1
  }

  has(hex: string): boolean {
    return this.get(hex) !== undefined
  }

  /** The stage worker set this entry's mode and mtime on its content's staged file. */
  markMeta(entry: ManifestEntry): void {
    const id = this.ids.get(entry.sha256!)
    if (id >= 0) this.markMetaAt(id, 1)
  }

  /**
   * The stage worker sets the mode and mtime of content number `id`'s first entry on its staged
   * file (`how` 1), or also places that file ahead at the entry's path (`how` 2: new-folders.ts).
   */
  markMetaAt(id: number, how: 1 | 2): void {
    if (this.metaSet.length <= id) {
      const grown = new Uint8Array(Math.max(this.firsts.length, id + 1))
      grown.set(this.metaSet)
      this.metaSet = grown
    }
    this.metaSet[id] = how
  }

  /** Content number `id` is fetched for `entry` (its first entry; no entry object made). */
  isFirstAt(id: number, entry: object): boolean {
    return this.firsts.isAt(id, entry as ManifestEntry)
  }

  /** The entry content number `id` is fetched for (0 <= id < size). */
  entryAt(id: number): ManifestEntry {
    return this.firsts.at(id)
  }

  /** True when a file staged in this run already has this entry's mode and mtime. */
  hasMetaOf(entry: ManifestEntry): boolean {
    return this.hasMetaAt(this.ids.get(entry.sha256!), entry)
  }

  /** hasMetaOf for an entry whose content number `id` the caller knows (no look-up of the table). */
  hasMetaAt(id: number, entry: ManifestEntry): boolean {
    return id >= 0 && (this.metaSet[id] ?? 0) > 0 && this.firsts.isAt(id, entry)
  }

  /** The entry at whose path content number `id`'s file was placed ahead (markMeta's `how` 2), if it was. */
  placedAt(id: number): ManifestEntry | undefined {
    return this.metaSet[id] === 2 ? this.firsts.at(id) : undefined
  }

  /** Content number `id`'s file was placed ahead at `entry`'s path (no entry made). */
  placedAheadAt(id: number, entry: ManifestEntry): boolean {
    return this.metaSet[id] === 2 && this.firsts.isAt(id, entry)
  }

  *entries(): MapIterator<[string, ManifestEntry]> {
    for (const e of this.firsts) yield [e.sha256!.toString('hex'), e]
  }

  *keys(): MapIterator<string> {
    for (const e of this.firsts) yield e.sha256!.toString('hex')
  }

  *values(): MapIterator<ManifestEntry> {
    yield* this.firsts
  }

  [Symbol.iterator](): MapIterator<[string, ManifestEntry]> {
    return this.entries()
  }

  forEach(fn: (value: ManifestEntry, key: string, map: ReadonlyMap<string, ManifestEntry>) => void): void {
    for (const [hex, e] of this.entries()) fn(e, hex, this)
  }
}
