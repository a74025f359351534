import { padPath, type LayoutFile } from '../torrent/layout.js'
import type { FileFacts } from './manifest-files.js'

/** One byte range of a torrent's content, and where its bytes come from. */
export interface Segment {
  /** Offset in the torrent's concatenated content. */
  offset: number
  length: number
  source: 'pad' | 'manifest' | 'memory' | 'file'
  /** Torrent path (repo-relative). */
  path: string
  /** The bytes of a 'manifest' or 'memory' segment (data.dsync; a shard .torrent inside an index). */
  data?: Buffer
  /** What data.dsync says the file on disk must be; checked when the file is opened. */
  mtime: number
  /** The inode gendsync hashed (from its hash cache, when that agrees on size and mtime). */
  ino?: number
}

/** Bytes a torrent starts with that the host holds in memory: data.dsync, an index's shard .torrent files. */
export interface HeadEntry {
  source: 'manifest' | 'memory'
  path: string
  data: Buffer
}

/**
 * The segments of one torrent without an object per file: the entries (heads in memory, then
 * files from a FileFacts table) are one offset each in a typed array, and the BEP 47 pad after
 * an entry is the gap to the next one. Segment `2e` is entry `e`, `2e + 1` the pad zeros after
 * it (often empty). Segment objects are made on demand, one per block read.
 */
export class SegmentTable {
  readonly count: number

  constructor(
    private readonly heads: HeadEntry[],
    /** Offset of every entry, heads first: sorted. */
    private readonly offsets: Float64Array,
    private readonly files: FileFacts,
    /** The FileFacts index of the first file entry. */
    private readonly firstFile: number,
    readonly totalLength: number,
  ) {
    this.count = offsets.length * 2
  }

  /** Files (not heads) in this torrent. */
  get fileCount(): number {
    return this.offsets.length - this.heads.length
  }

  /** Index of the segment holding content byte `pos` (binary search). */
  at(pos: number): number {
    const offsets = this.offsets
    let lo = 0
    let hi = offsets.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (offsets[mid] <= pos) lo = mid
      else hi = mid - 1
    }
    return pos < offsets[lo] + this.entryLength(lo) ? 2 * lo : 2 * lo + 1
  }

  get(i: number): Segment {
    const e = i >> 1
    const offset = this.offsets[e]
    const length = this.entryLength(e)
    if (i & 1) {
      const end = e + 1 < this.offsets.length ? this.offsets[e + 1] : this.totalLength
      return { offset: offset + length, length: end - offset - length, source: 'pad', path: padPath(end - offset - length), mtime: 0 }
    }
    if (e < this.heads.length) {
      const h = this.heads[e]
      return { offset, length, source: h.source, path: h.path, data: h.data, mtime: 0 }
    }
    const k = this.firstFile + e - this.heads.length
    const seg: Segment = { offset, length, source: 'file', path: this.files.path(k), mtime: this.files.mtime(k) }
    const ino = this.files.ino(k)
    if (ino !== undefined) seg.ino = ino
    return seg
  }

  /** Every non-empty segment as an object (tests, benchmarks; O(files) objects). */
  list(): Segment[] {
    const out: Segment[] = []
    for (let i = 0; i < this.count; i++) {
      const seg = this.get(i)
      if (seg.length > 0) out.push(seg)
    }
    return out
  }

  private entryLength(e: number): number {
    return e < this.heads.length ? this.heads[e].data.length : this.files.size(this.firstFile + e - this.heads.length)
  }

  /** A table from a small layout (a delta torrent): paths and mtimes given per file. */
  static fromLayout(layout: LayoutFile[], mtimes: Map<string, number>): SegmentTable {
    const files = layout.filter(f => !f.pad)
    const facts: FileFacts = {
      path: k => files[k].path,
      size: k => files[k].length,
      mtime: k => mtimes.get(files[k].path) ?? 0,
      ino: () => undefined,
    }
    const last = layout[layout.length - 1]
    return new SegmentTable([], Float64Array.from(files.map(f => f.offset)), facts, 0, last.offset + last.length)
  }
}
