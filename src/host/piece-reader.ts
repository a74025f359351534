import { join } from 'node:path'
import { FdCache, StaleFileError } from './fd-cache.js'
import type { Expected } from './repo-file.js'
import type { Generation, Segment } from './generation.js'
import { ReadWindows, type WindowSpan } from './read-windows.js'
import { SmallFileReader, WHOLE_FILE_MAX } from './small-files.js'
import { hostReadBuffers, type ReadBuffers } from './read-buffers.js'
import { ColdDisk } from './cold-disk.js'

/** Largest block a peer may ask for; BEP 3 clients use 16 KiB, some up to 128 KiB. */
export const MAX_BLOCK = 128 * 1024

export class BadRequestError extends Error {}

/**
 * Serves block requests (piece, offset, length) of one generation straight from the mirror
 * folder: data.dsync from memory, pad ranges as zeros, file ranges through the bounded fd
 * cache. A file found changed since gendsync is remembered as stale and every later request
 * touching it fails at once, until the next generation replaces this reader.
 */
export class PieceReader {
  readonly stale = new Map<string, string>()
  bytesRead = 0
  /**
   * Where file buffers come from. A block returned by `readNow` or `read` holds a reference to
   * its buffer: the caller gives it back with `buffers.release(block)` once it is sent or copied.
   */
  readonly buffers: ReadBuffers = hostReadBuffers
  /** Whether files may be read on the event loop now (small files and big files' windows alike). */
  private readonly disk = new ColdDisk()
  private readonly small = new SmallFileReader(this.buffers, this.disk)
  private readonly windows = new ReadWindows(this.buffers)
  private inodesLoaded = false
  /**
   * The repository folder with a trailing slash: file paths are appended to it (data.dsync's
   * paths are normal and relative), not joined: path.join per request was 0.9% of a host's
   * busy time serving the bench's `mirror` tree.
   */
  private readonly root: string

  constructor(
    private readonly gen: Generation,
    private readonly fds: FdCache,
    private readonly onStale: (path: string, reason: string) => void = () => {},
  ) {
    this.root = join(gen.save, '/')
  }

  /** Files opened so far (through the fd cache or read whole). */
  get filesOpened(): number {
    return this.fds.opened + this.small.filesRead
  }

  /**
   * The block at once when no asynchronous read is needed (a block inside one small file, or
   * inside a big file's read window, the disk not cold), else undefined: most requests are
   * answered without a promise. Throws what `read` would reject with.
   */
  readNow(piece: number, offset: number, length: number): Buffer | undefined {
    if (this.gen.inodesLoaded && !this.inodesLoaded) return undefined
    const start = this.blockStart(piece, offset, length)
    const seg = this.gen.segments.get(this.segmentAt(start))
    const small = this.fromSmallFile(seg, start, start + length, false)
    if (small) return small
    const w = this.windowOf(seg, start, length)
    if (!w) return undefined
    const data = this.windows.now(w) ?? (this.disk.cold ? undefined : this.windows.readNow(w, () => this.readWindowSync(seg, w)))
    if (!data) return undefined
    this.bytesRead += length
    return data.subarray(start - seg.offset - w.start, start - seg.offset - w.start + length)
  }

  async read(piece: number, offset: number, length: number): Promise<Buffer> {
    const gen = this.gen
    // A host loading a big generation reads gendsync's inodes after it starts answering:
    // no file is opened before the inode check can be made.
    if (gen.inodesLoaded && !this.inodesLoaded) {
      await gen.inodesLoaded
      this.inodesLoaded = true
    }
    const start = this.blockStart(piece, offset, length)
    const end = start + length
    const first = this.segmentAt(start)
    const firstSeg = gen.segments.get(first)
    const whole = this.fromSmallFile(firstSeg, start, end, true)
    if (whole) return whole
    const w = this.windowOf(firstSeg, start, length)
    if (w) {
      this.disk.takeCold() // one read more sent down the asynchronous path, if that is why it is here
      const data = await this.windows.get(w, () => this.readWindow(firstSeg, w))
      this.bytesRead += length
      return data.subarray(start - firstSeg.offset - w.start, start - firstSeg.offset - w.start + length)
    }
    const out = Buffer.allocUnsafe(length)
    const reads: Promise<void>[] = []
    for (let i = first; i < gen.segments.count; i++) {
      const seg = gen.segments.get(i)
      if (seg.offset >= end) break
      const from = Math.max(start, seg.offset)
      const to = Math.min(end, seg.offset + seg.length)
      if (to <= from) continue
      if (seg.source === 'pad') {
        out.fill(0, from - start, to - start)
        continue
      }
      if (seg.source === 'manifest' || seg.source === 'memory') {
        ;(seg.data ?? gen.manifest).copy(out, from - start, from - seg.offset, to - seg.offset)
        continue
      }
      reads.push(this.readFile(seg, from - seg.offset, out, from - start, to - from))
    }
    await Promise.all(reads)
    this.bytesRead += length
    return out
  }

  /** Where the block starts in the content; throws BadRequestError for a block outside the torrent. */
  private blockStart(piece: number, offset: number, length: number): number {
    const gen = this.gen
    if (!Number.isInteger(piece) || piece < 0 || piece >= gen.pieceCount) throw new BadRequestError(`no piece ${piece}`)
    const pieceSize = Math.min(gen.pieceLength, gen.totalLength - piece * gen.pieceLength)
    if (length <= 0 || length > MAX_BLOCK || offset < 0 || offset + length > pieceSize) {
      throw new BadRequestError(`bad range ${offset}+${length} in piece ${piece}`)
    }
    return piece * gen.pieceLength + offset
  }

  /** True when a request touching this piece would be refused (a file in it is stale). */
  pieceIsStale(piece: number): boolean {
    if (this.stale.size === 0) return false
    const start = piece * this.gen.pieceLength
    const end = Math.min(start + this.gen.pieceLength, this.gen.totalLength)
    for (let i = this.segmentAt(start); i < this.gen.segments.count; i++) {
      const seg = this.gen.segments.get(i)
      if (seg.offset >= end) break
      if (this.stale.has(seg.path)) return true
    }
    return false
  }

  /**
   * A request inside one small file (most requests of a mirror of small files): the file is
   * read whole and the block is a view of it, no copy. Undefined when the request spans
   * other segments, the file is big, or the disk is cold.
   */
  private fromSmallFile(seg: Segment, start: number, end: number, countCold: boolean): Buffer | undefined {
    if (seg.source !== 'file' || seg.length > WHOLE_FILE_MAX || end > seg.offset + seg.length) return undefined
    // A file sent down the asynchronous path while the disk is cold counts once, in read().
    if (countCold ? this.disk.takeCold() : this.disk.cold) return undefined
    const known = this.stale.get(seg.path)
    if (known !== undefined) throw new StaleFileError(seg.path, known)
    try {
      const data = this.small.read(this.root + seg.path, this.expected(seg), start === seg.offset && end === seg.offset + seg.length)
      this.bytesRead += end - start
      return data.subarray(start - seg.offset, end - seg.offset)
    } catch (err) {
      this.small.forget(this.root + seg.path)
      this.noteStale(seg, err)
      throw err
    }
  }

  /**
   * The read window of a big file holding a block that lies inside that file (read-windows.ts
   * says why); undefined for other blocks, and for a file known stale (refused by readFile).
   */
  private windowOf(seg: Segment, start: number, length: number): WindowSpan | undefined {
    if (seg.source !== 'file' || seg.length <= WHOLE_FILE_MAX || start + length > seg.offset + seg.length) return undefined
    if (this.stale.has(seg.path)) return undefined
    return this.windows.span(seg.path, seg.length, start - seg.offset, length)
  }

  /**
   * A window read on the event loop (the page cache is warm: ColdDisk), through the fd cache's
   * descriptors and checks; undefined when the file's descriptor is still being opened
   * asynchronously (the caller takes the asynchronous path).
   */
  private readWindowSync(seg: Segment, w: WindowSpan): Buffer | undefined {
    const out = this.buffers.take(w.length)
    const started = this.disk.started()
    try {
      if (this.fds.readSync(this.root + seg.path, this.expected(seg), out, 0, w.length, w.start)) {
        this.disk.finished(started)
        return out
      }
    } catch (err) {
      this.buffers.release(out)
      this.windows.forget(seg.path)
      this.noteStale(seg, err)
      throw err
    }
    this.buffers.release(out)
    return undefined
  }

  private expected(seg: Segment): Expected {
    return { root: this.gen.save, size: seg.length, mtime: seg.mtime, ino: seg.ino }
  }

  private async readWindow(seg: Segment, w: WindowSpan): Promise<Buffer> {
    const out = this.buffers.take(w.length)
    try {
      await this.readFile(seg, w.start, out, 0, w.length)
    } catch (err) {
      this.buffers.release(out)
      this.windows.forget(seg.path)
      throw err
    }
    return out
  }

  private noteStale(seg: Segment, err: unknown): void {
    if (err instanceof StaleFileError && !this.stale.has(seg.path)) {
      this.stale.set(seg.path, err.reason)
      this.onStale(seg.path, err.reason)
    }
  }

  private async readFile(seg: Segment, fileOffset: number, out: Buffer, outOffset: number, length: number): Promise<void> {
    const known = this.stale.get(seg.path)
    if (known !== undefined) throw new StaleFileError(seg.path, known)
    try {
      await this.fds.readAsync(this.root + seg.path, this.expected(seg), out, outOffset, length, fileOffset)
    } catch (err) {
      this.noteStale(seg, err)
      throw err
    }
  }

  /** Index of the segment holding content byte `pos`. */
  private segmentAt(pos: number): number {
    return this.gen.segments.at(pos)
  }
}
