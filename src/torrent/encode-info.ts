import type { LayoutFile } from './layout.js'

/**
 * Bencodes a dsync torrent's info dict directly. A generic encoder builds and sorts a
 * dict object per file; at 200k files (400k entries with pads) bencode.encode took 2.5 s
 * and was gendsync's memory peak. Here the keys are written in their sorted order by hand
 * (files < name < piece length < pieces; attr < length < path) into one string, and the
 * pieces are appended as bytes. test/torrent.test.ts checks the output against
 * bencode.encode byte for byte.
 */
export function encodeInfo(files: LayoutFile[], name: string, pieceLength: number, pieces: Buffer): Buffer {
  const parts: string[] = ['d5:filesl']
  for (const f of files) {
    if (f.pad) {
      const n = String(f.length)
      parts.push(`d4:attr1:p6:lengthi${f.length}e4:pathl4:.pad${n.length}:${n}ee`)
      continue
    }
    let path = ''
    for (const seg of f.path.split('/')) path += `${byteLength(seg)}:${seg}`
    parts.push(`d6:lengthi${f.length}e4:pathl${path}ee`)
  }
  parts.push(`e4:name${byteLength(name)}:${name}12:piece lengthi${pieceLength}e6:pieces${pieces.length}:`)
  return Buffer.concat([Buffer.from(parts.join(''), 'utf8'), pieces, Buffer.from('e')])
}

function byteLength(s: string): number {
  // Most mirror paths are ASCII, where the UTF-16 length is the byte length.
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return Buffer.byteLength(s, 'utf8')
  return s.length
}

/**
 * encodeInfo for files given as UTF-8 path bytes and lengths, pads inserted by the layout
 * rule (after every file not ending on a piece boundary, except the last): the same bytes,
 * written straight into one buffer with no string or object per file. gendsync encodes
 * shard torrents from data.dsync's own bytes with it.
 */
export function encodeInfoRows(
  count: number, pathAt: (i: number) => Buffer, lengthAt: (i: number) => number, name: string, pieceLength: number, pieces: Buffer,
): Buffer {
  const w = new InfoWriter(count * 96 + pieces.length + 256)
  writeRows(w, count, pathAt, lengthAt, pieceLength)
  return w.finish(name, pieceLength, pieces)
}

/**
 * encodeInfoRows into one buffer holding the whole .torrent (`head`: torrentHead's bytes, then
 * the info dict, then the outer dict's end), sized by the caller: `entryBytes`, the files
 * list's entries and pads (entryByteLength, padEntryByteLength), which it knows (a full
 * gendsync costed every file to place the shards). At 200k files encodeInfoRows' guess was
 * ~116 bytes a file against ~150 written, so each shard's buffer grew (a copy into fresh
 * memory twice its size), and wrapInfo then copied the info dict once more into the
 * .torrent's buffer: ~2.5x the torrents' 30 MB of fresh pages, which this VM charges
 * ~5-15 us a page (docs/SCALE.md, session 24).
 */
export function encodeTorrentRows(
  count: number, pathAt: (i: number) => Buffer, lengthAt: (i: number) => number, name: string, pieceLength: number, pieces: Buffer,
  head: Buffer, entryBytes: number, longestPath: number,
): { torrent: Buffer; info: Buffer } {
  // entry()'s reserve asks for 2x a path + 64 however little it writes; finish() for the name, pieces and 64.
  const w = new InfoWriter(16 + entryBytes + 2 * longestPath + 64 + Buffer.byteLength(name) + pieces.length + 128, undefined, head)
  writeRows(w, count, pathAt, lengthAt, pieceLength)
  return w.torrentBytes(name, pieceLength, pieces)
}

function writeRows(w: InfoWriter, count: number, pathAt: (i: number) => Buffer, lengthAt: (i: number) => number, pieceLength: number): void {
  for (let i = 0; i < count; i++) {
    const length = lengthAt(i)
    w.entry(pathAt(i), length)
    if (length % pieceLength !== 0 && i < count - 1) w.pad(pieceLength - (length % pieceLength))
  }
}

/** Bytes of a file's entry in the files list (encodeInfo's), without its pad entry; path = buf[from, to). */
export function entryByteLength(buf: Buffer, from: number, to: number, length: number): number {
  let n = 20 + decimalLength(length)
  let seg = from
  for (let j = from; j <= to; j++) {
    if (j < to && buf[j] !== 0x2f) continue
    n += decimalLength(j - seg) + 1 + (j - seg)
    seg = j + 1
  }
  return n
}

/** Bytes of the pad entry for `pad` bytes of padding. */
export function padEntryByteLength(pad: number): number {
  const digits = decimalLength(pad)
  return 36 + 2 * digits + decimalLength(digits)
}

export function decimalLength(n: number): number {
  if (n < 10000) return n < 10 ? 1 : n < 100 ? 2 : n < 1000 ? 3 : 4
  // Counted, not String(n).length: a pad entry's length (up to a piece, 16,384+) is measured
  // once per previous file in a hinted run (shard-rebuild.ts), a string each was ~200k of them.
  if (n < 1e15) {
    let digits = 5
    for (let p = 1e5; n >= p; p *= 10) digits++
    return digits
  }
  return String(n).length
}

const ENTRY_HEAD = Buffer.from('d6:lengthi', 'latin1')
const ENTRY_PATH = Buffer.from('e4:pathl', 'latin1')

/** An info dict written front to back: file entries, pad entries, runs of bytes already encoded. */
export class InfoWriter {
  private buf: Buffer
  private at = 0
  private readonly pads = new Map<number, Buffer>()

  /** Where the info dict starts: after the torrent's head, when one was given. */
  private readonly infoAt: number

  /**
   * `scratch`: a buffer to write into when it is big enough (a caller encoding many shards
   * reuses one). `head`: the .torrent's bytes before its info dict (torrentHead), written first
   * so that torrentBytes() gives the whole file without copying the info dict into another buffer.
   */
  constructor(size: number, scratch?: Buffer, head?: Buffer) {
    const need = size + (head?.length ?? 0)
    this.buf = scratch && scratch.length >= need ? scratch : Buffer.allocUnsafe(need)
    if (head) this.copy(head, 0, head.length)
    this.infoAt = this.at
    this.ascii('d5:filesl')
  }

  /** The buffer written into (grown or not): free for the next writer once finish()'s bytes are copied out. */
  get buffer(): Buffer {
    return this.buf
  }

  entry(path: Buffer, length: number): void {
    this.reserve(path.length * 2 + 64)
    this.bytes(ENTRY_HEAD).dec(length).bytes(ENTRY_PATH)
    const b = this.buf
    let seg = 0
    for (let j = 0; j <= path.length; j++) {
      if (j < path.length && path[j] !== 0x2f) continue
      this.dec(j - seg).byte(0x3a)
      for (let k = seg; k < j; k++) b[this.at++] = path[k]
      seg = j + 1
    }
    this.byte(0x65).byte(0x65)
  }

  pad(length: number): void {
    // A piece length has a few thousand pad lengths at most: each one's entry is encoded once.
    let entry = this.pads.get(length)
    if (!entry) {
      const d = String(length)
      entry = Buffer.from(`d4:attr1:p6:lengthi${d}e4:pathl4:.pad${d.length}:${d}ee`, 'latin1')
      this.pads.set(length, entry)
    }
    this.reserve(entry.length)
    this.bytes(entry)
  }

  /** Bytes of entries encoded before (a previous torrent's), copied as they are. */
  raw(src: Buffer, from: number, to: number): void {
    this.reserve(to - from)
    this.copy(src, from, to)
  }

  finish(name: string, pieceLength: number, pieces: Buffer): Buffer {
    const nameBytes = Buffer.from(name, 'utf8')
    this.reserve(nameBytes.length + pieces.length + 64)
    this.ascii('e4:name').dec(nameBytes.length).byte(0x3a).copy(nameBytes, 0, nameBytes.length)
    this.ascii('12:piece lengthi').dec(pieceLength).ascii('e6:pieces').dec(pieces.length).byte(0x3a).copy(pieces, 0, pieces.length).byte(0x65)
    return this.buf.subarray(this.infoAt, this.at)
  }

  /**
   * finish() for a writer made with the torrent's head: the whole .torrent (head, info dict,
   * the outer dict's end) in the writer's own buffer, and its info dict's bytes (wrapInfo's
   * bytes; the caller hashes the info dict its own way, e.g. sharing the SHA-1 of a prefix).
   */
  torrentBytes(name: string, pieceLength: number, pieces: Buffer): { torrent: Buffer; info: Buffer } {
    if (this.infoAt === 0) throw new Error('InfoWriter.torrentBytes: made without the torrent head')
    const info = this.finish(name, pieceLength, pieces)
    this.reserve(1)
    this.byte(0x65)
    return { torrent: this.buf.subarray(0, this.at), info: this.buf.subarray(this.infoAt, this.infoAt + info.length) }
  }

  private reserve(n: number): void {
    if (this.at + n <= this.buf.length) return
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n))
    this.buf.copy(next, 0, 0, this.at)
    this.buf = next
  }

  private ascii(s: string): this {
    this.at += this.buf.write(s, this.at, 'latin1')
    return this
  }

  private byte(b: number): this {
    this.buf[this.at++] = b
    return this
  }

  private dec(n: number): this {
    if (n < 10) return this.byte(0x30 + n)
    if (n < 100) return this.byte(0x30 + Math.floor(n / 10)).byte(0x30 + (n % 10))
    if (n < 1e9) {
      // Digits written from the right, no string per number.
      const len = decimalLength(n)
      for (let i = this.at + len - 1; i >= this.at; i--, n = Math.floor(n / 10)) this.buf[i] = 0x30 + (n % 10)
      this.at += len
      return this
    }
    return this.ascii(String(n))
  }

  /** Short constant bytes, copied by hand (a native copy costs more than it moves here). */
  private bytes(src: Buffer): this {
    const b = this.buf
    for (let i = 0; i < src.length; i++) b[this.at++] = src[i]
    return this
  }

  private copy(src: Buffer, from: number, to: number): this {
    this.at += src.copy(this.buf, this.at, from, to)
    return this
  }
}
