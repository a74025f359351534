import { createHash } from 'node:crypto'

/**
 * What the host needs from its own `<repo>.torrent`: the raw bytes of the info dict (served
 * as-is over ut_metadata; its SHA-1 is the infohash), the file list to check against the
 * layout computed from data.dsync, and the announce URLs. A tiny bencode walker instead of
 * a full decode: decoding and re-encoding a 200k-file info dict costs seconds and hundreds
 * of MB (parse-torrent measured 3 s / 740 MB), walking it costs a fraction of that.
 */
export interface TorrentInfo {
  infoBytes: Buffer
  infoHash: string
  name: string
  pieceLength: number
  /** Concatenated 20-byte SHA-1 piece hashes. */
  pieces: Buffer
  files: { path: string; length: number; pad: boolean }[]
  trackers: string[]
}

export class TorrentFormatError extends Error {}

const MAX_DEPTH = 64

export class Reader {
  pos = 0
  constructor(readonly buf: Buffer) {}

  fail(what: string): never {
    throw new TorrentFormatError(`${what} at byte ${this.pos}`)
  }

  peek(): number {
    if (this.pos >= this.buf.length) this.fail('unexpected end')
    return this.buf[this.pos]
  }

  /** An integer (`i42e`); digits are read in place, nothing allocated (1M-file torrents). */
  int(): number {
    if (this.peek() !== 0x69) this.fail('expected an integer')
    const buf = this.buf
    let at = this.pos + 1
    const negative = buf[at] === 0x2d
    if (negative) at++
    const first = at
    let value = 0
    while (at < buf.length && buf[at] >= 0x30 && buf[at] <= 0x39) value = value * 10 + buf[at++] - 0x30
    if (at >= buf.length) this.fail('unterminated integer')
    if (buf[at] !== 0x65 || at === first || at - first > 16) this.fail('bad integer')
    // Beyond 2^53 the digit loop may round differently from Number(): let Number() decide.
    if (value > Number.MAX_SAFE_INTEGER) value = Number(buf.toString('latin1', first, at))
    this.pos = at + 1
    return negative ? -value : value
  }

  /** A byte string's header: moves past it and returns where its bytes start (they end at `pos`). */
  span(): number {
    const buf = this.buf
    let at = this.pos
    let len = 0
    while (at < buf.length && buf[at] >= 0x30 && buf[at] <= 0x39 && at - this.pos < 12) len = len * 10 + buf[at++] - 0x30
    if (at >= buf.length || buf[at] !== 0x3a || at === this.pos) {
      if (buf.indexOf(0x3a, this.pos) < 0 || buf.indexOf(0x3a, this.pos) - this.pos > 12) this.fail('expected a string')
      this.fail('bad string length')
    }
    const start = at + 1
    if (start + len > buf.length) this.fail('string runs past the end')
    this.pos = start + len
    return start
  }

  bytes(): Buffer {
    const start = this.span()
    return this.buf.subarray(start, this.pos)
  }

  /** Skips one value of any type and returns where it started. */
  skip(depth = 0): number {
    const start = this.pos
    if (depth > MAX_DEPTH) this.fail('nesting too deep')
    const c = this.peek()
    if (c === 0x69) this.int()
    else if (c === 0x6c || c === 0x64) {
      this.pos++
      while (this.peek() !== 0x65) {
        if (c === 0x64) this.span()
        this.skip(depth + 1)
      }
      this.pos++
    } else this.span()
    return start
  }

  /** Calls `onKey` for each key of a dict; the callback must consume the value. */
  dict(onKey: (key: string) => void): void {
    if (this.peek() !== 0x64) this.fail('expected a dictionary')
    this.pos++
    while (this.peek() !== 0x65) onKey(this.bytes().toString('utf8'))
    this.pos++
  }

  list(onItem: () => void): void {
    if (this.peek() !== 0x6c) this.fail('expected a list')
    this.pos++
    while (this.peek() !== 0x65) onItem()
    this.pos++
  }
}

export interface ReadOptions {
  /**
   * Consumes the info dict's `files` list in place instead of building `files` (left empty):
   * a host checks a 1M-file list against data.dsync without an object per entry. Must read
   * exactly the list's value from the reader (`src/torrent/file-list.ts`).
   */
  onFiles?: (r: Reader) => void
}

export function readTorrentInfo(torrent: Buffer, opts: ReadOptions = {}): TorrentInfo {
  const r = new Reader(torrent)
  let infoBytes: Buffer | undefined
  let info: ReturnType<typeof parseInfo> | undefined
  const trackers: string[] = []
  r.dict(key => {
    if (key === 'info') {
      // Parsed where it lies (one pass over a 1M-file list, not a skip and then a parse);
      // positions in errors and for onFiles count from the info dict's first byte.
      const start = r.pos
      const sub = new Reader(torrent.subarray(start))
      // Not a dict: skip() says what is wrong with it first (a hostile nesting depth, say).
      if (sub.peek() !== 0x64) sub.skip()
      sub.pos = 0
      info = parseInfo(sub, opts.onFiles)
      infoBytes = torrent.subarray(start, start + sub.pos)
      r.pos = start + sub.pos
    } else if (key === 'announce') {
      const url = r.bytes().toString('utf8')
      if (!trackers.includes(url)) trackers.push(url)
    } else if (key === 'announce-list') {
      r.list(() => r.list(() => {
        const url = r.bytes().toString('utf8')
        if (!trackers.includes(url)) trackers.push(url)
      }))
    } else r.skip()
  })
  if (!infoBytes || !info) throw new TorrentFormatError('no info dictionary')
  return { ...info, infoBytes, infoHash: createHash('sha1').update(infoBytes).digest('hex'), trackers }
}

function parseInfo(r: Reader, onFiles?: (r: Reader) => void): Omit<TorrentInfo, 'infoBytes' | 'infoHash' | 'trackers'> {
  let name = ''
  let pieceLength = 0
  let pieces: Buffer = Buffer.alloc(0)
  const files: TorrentInfo['files'] = []
  let single: number | undefined
  r.dict(key => {
    switch (key) {
      case 'name': name = r.bytes().toString('utf8'); break
      case 'piece length': pieceLength = r.int(); break
      case 'pieces': pieces = r.bytes(); break
      case 'length': single = r.int(); break
      case 'files':
        if (onFiles) {
          onFiles(r)
          break
        }
        readFiles(r, files)
        break
      default: r.skip()
    }
  })
  if (single !== undefined) files.push({ path: name, length: single, pad: false })
  if (pieceLength <= 0 || pieces.length % 20 !== 0) r.fail('bad piece length or pieces')
  return { name, pieceLength, pieces, files }
}

const PATH_SCRATCH_BYTES = 4096
/** A file entry's path, its parts joined by `/` as bytes, decoded once (reused, grown as needed). */
let pathScratch: Buffer = Buffer.allocUnsafe(PATH_SCRATCH_BYTES)

/**
 * The info dict's `files` list: the client's start reads it for every file of a bootstrap
 * (40,000 entries with the pads at 20,000 files). Keys are told apart by their bytes and a
 * path's parts are joined before one UTF-8 decode (the same string as decoding each part and
 * joining them: `/` is ASCII), instead of a string per key and per part, an array per entry
 * and a callback per value: 3x faster on `bench swarm`'s `many` torrent (ARCHITECTURE, "Swarm, session 12").
 */
function readFiles(r: Reader, files: TorrentInfo['files']): void {
  if (r.peek() !== 0x6c) r.fail('expected a list')
  r.pos++
  try {
    while (r.peek() !== 0x65) files.push(readFileEntry(r))
  } finally {
    // Grown by a long path (a hostile .torrent's can be megabytes): not kept for a host's lifetime.
    if (pathScratch.length > PATH_SCRATCH_BYTES) pathScratch = Buffer.allocUnsafe(PATH_SCRATCH_BYTES)
  }
  r.pos++
}

const enum Key { other, length, path, attr }

/**
 * Which of the keys a file entry's reader wants `buf[start, end)` is. Compared byte by byte,
 * as the path's parts are copied below: Buffer's compare and copy cost more in argument checks
 * than these few bytes do (a profile had them at half the walk).
 */
function keyOf(buf: Buffer, start: number, end: number): Key {
  const n = end - start
  if (n === 6) {
    return buf[start] === 0x6c && buf[start + 1] === 0x65 && buf[start + 2] === 0x6e && buf[start + 3] === 0x67 &&
      buf[start + 4] === 0x74 && buf[start + 5] === 0x68 ? Key.length : Key.other // length
  }
  if (n !== 4) return Key.other
  const c0 = buf[start], c1 = buf[start + 1], c2 = buf[start + 2], c3 = buf[start + 3]
  if (c0 === 0x70 && c1 === 0x61 && c2 === 0x74 && c3 === 0x68) return Key.path
  return c0 === 0x61 && c1 === 0x74 && c2 === 0x74 && c3 === 0x72 ? Key.attr : Key.other
}

function readFileEntry(r: Reader): { path: string; length: number; pad: boolean } {
  if (r.peek() !== 0x64) r.fail('expected a dictionary')
  r.pos++
  const buf = r.buf
  let length = -1
  let pad = false
  let parts = 0
  let used = 0
  while (r.peek() !== 0x65) {
    const k = r.span()
    const key = keyOf(buf, k, r.pos)
    if (key === Key.length) length = r.int()
    else if (key === Key.attr) pad = hasByte(buf, r.span(), r.pos, 0x70) // 'p'
    else if (key === Key.path) {
      if (r.peek() !== 0x6c) r.fail('expected a list')
      r.pos++
      while (r.peek() !== 0x65) {
        const start = r.span()
        const end = r.pos
        if (used + 1 + end - start > pathScratch.length) pathScratch = grown(pathScratch, used, used + 1 + end - start)
        const out = pathScratch
        if (parts++ > 0) out[used++] = 0x2f
        for (let i = start; i < end; i++) out[used++] = buf[i]
      }
      r.pos++
    } else r.skip()
  }
  r.pos++
  if (length < 0 || parts === 0) r.fail('file entry without length or path')
  return { path: pathScratch.toString('utf8', 0, used), length, pad }
}

function hasByte(buf: Buffer, start: number, end: number, byte: number): boolean {
  for (let i = start; i < end; i++) if (buf[i] === byte) return true
  return false
}

function grown(old: Buffer, keep: number, need: number): Buffer {
  const next = Buffer.allocUnsafe(Math.max(need, old.length * 2))
  next.set(old.subarray(0, keep))
  return next
}
