import { createHash } from 'node:crypto'
import { closeSync, fstatSync, fsyncSync, openSync, readSync, rmSync, writeSync } from 'node:fs'
import { MAGIC as MANIFEST_MAGIC, VERSION as MANIFEST_VERSION } from '../manifest/format.js'
import { comparePathAt, lowerBound, type Lines } from '../manifest/manifest-lines.js'
import { DeltaError, pathKey, type Delta } from './delta.js'

/**
 * The deltas of a chain applied to DEST's data.dsync as a stream (docs/SCALE.md, "Update
 * memory"): the old list is read in 1 MiB chunks and never held whole, the deltas' lines (a
 * few per changed entry) are merged into it, and the new list is written once into a buffer
 * as big as it can get. At 1M files this holds one list (~150 MB) where splicing held two.
 * The chain is applied in one pass: for each path the newest delta's line wins, which is what
 * applying the deltas one after the other gives, header counts included.
 */
export interface AppliedDeltas {
  /** The new data.dsync, its END line included. */
  manifest: Buffer
  /** SHA-256 of `manifest` (hex): what the record names. */
  sha256: string
  /** SHA-256 of the list read (hex): the caller checks it is the one the chain starts from. */
  fromSha256: string
  /** DEST's entry line at each path a delta names (unescaped path), undefined where it had none. */
  before: Map<string, string | undefined>
  /** The `entries` count of the list read. */
  previousEntries: number
}

/** Where the old list's bytes come from: DEST's file, or a buffer. */
export interface ListReader {
  size: number
  read(into: Buffer, position: number): number
  close(): void
}

export function fileReader(path: string): ListReader {
  const fd = openSync(path, 'r')
  return { size: fstatSync(fd).size, read: (into, position) => readSync(fd, into, 0, into.length, position), close: () => closeSync(fd) }
}

export function bufferReader(buf: Buffer): ListReader {
  return { size: buf.length, read: (into, position) => buf.copy(into, 0, position, Math.min(buf.length, position + into.length)), close: () => {} }
}

const CHUNK = 1 << 20
/** Room before the body for the new header (magic and four counts). */
const HEAD_ROOM = 256

interface Change {
  key: Buffer
  line: string
}

export function applyDeltas(src: ListReader, deltas: Delta[]): AppliedDeltas {
  if (deltas.length === 0) throw new DeltaError('no delta to apply')
  const changes = compose(deltas)
  const room = changes.reduce((n, c) => n + Buffer.byteLength(c.line) + 1, 0)
  const sink = new BufferSink(Buffer.allocUnsafe(HEAD_ROOM + src.size + room + 128))
  const m = new Merge(sink, changes)
  const fromHash = createHash('sha256')
  readListRuns(src, { header: text => m.header(text), bytes: chunk => fromHash.update(chunk), run: lines => m.region(lines) })
  m.rest()
  const head = Buffer.from(headText(deltas, m))
  const start = HEAD_ROOM - head.length
  head.copy(sink.out, start)
  const hash = createHash('sha256').update(sink.out.subarray(start, sink.w))
  const end = Buffer.from(`END\t${hash.copy().digest('hex')}\n`)
  end.copy(sink.out, sink.w)
  const manifest = sink.out.subarray(start, sink.w + end.length)
  return { manifest, sha256: hash.update(end).digest('hex'), fromSha256: fromHash.digest('hex'), before: m.before, previousEntries: m.previousEntries }
}

function headText(deltas: Delta[], m: Merge): string {
  return `${MANIFEST_MAGIC} ${MANIFEST_VERSION}\npiece-length ${deltas[deltas.length - 1].pieceLength}\nentries ${m.entries}\nfiles ${m.files}\nbytes ${m.bytes}\n\n`
}

/** The new list applied to a file (`applyDeltasToFile`): where it is and what the plan needs to read it by line. */
export interface AppliedToFile extends Omit<AppliedDeltas, 'manifest'> {
  file: string
  size: number
  /** The header's text, blank line included. */
  header: string
  /** Offset of each entry line in the file, then of the END line: `count + 1` values. */
  starts: Uint32Array
  count: number
  /** The entry lines that are hardlinks, by number (few in any repository). */
  hardlinks: number[]
}

/**
 * The deltas applied as a stream into a file (docs/SCALE.md, "Update memory"): the new list
 * is written as it is merged and never held in memory, only its line offsets (4 bytes a
 * line). Its header counts come first in the file and are known only once every old line was
 * seen, so DEST's list is read twice: a counting pass (which also hashes it), then the
 * writing one, which hashes what it writes. The file is fsync'ed; the caller checks the
 * SHA-256 against the record before anything reads it, and removes the file on a refusal.
 */
export function applyDeltasToFile(list: () => ListReader, deltas: Delta[], path: string): AppliedToFile {
  if (deltas.length === 0) throw new DeltaError('no delta to apply')
  const changes = compose(deltas)
  const counted = new Merge(new NullSink(), changes)
  const fromHash = createHash('sha256')
  readWhole(list, { header: text => counted.header(text), bytes: chunk => fromHash.update(chunk), run: lines => counted.region(lines) })
  counted.rest()
  const header = headText(deltas, counted)
  // Its line count is known from the counting pass: the offsets are one array of that size.
  const sink = new FileSink(path, header, counted.entries + 2)
  try {
    const m = new Merge(sink, changes)
    readWhole(list, { header: text => m.header(text), run: lines => m.region(lines) })
    m.rest()
    if (m.entries !== counted.entries || m.bytes !== counted.bytes) throw new DeltaError('DEST data.dsync changed while it was read')
    const { sha256, size } = sink.end()
    return { file: path, size, header, sha256, fromSha256: fromHash.digest('hex'), before: counted.before, previousEntries: counted.previousEntries, starts: sink.starts(), count: sink.count, hardlinks: sink.hardlinks }
  } catch (err) {
    sink.abandon()
    throw err
  }
}

function readWhole(list: () => ListReader, on: ListRuns): void {
  const src = list()
  try {
    readListRuns(src, on)
  } finally {
    src.close()
  }
}

/** Where the merge puts the new list's entry lines. */
interface Sink {
  /** Old lines [from, to) of a run, unchanged. */
  copy(t: Lines, from: number, to: number): void
  /** One new line (its newline added). */
  line(text: string): void
}

class BufferSink implements Sink {
  w = HEAD_ROOM
  constructor(readonly out: Buffer) {}
  copy(t: Lines, from: number, to: number): void {
    this.w += t.buf.copy(this.out, this.w, t.starts[from], t.starts[to])
  }
  line(text: string): void {
    this.w += this.out.write(text + '\n', this.w)
  }
}

/** The counting pass: nothing kept. */
class NullSink implements Sink {
  copy(): void {}
  line(): void {}
}

/** The new list into a file through one reused 1 MiB buffer, hashed as written; each line's offset kept. */
class FileSink implements Sink {
  private readonly fd: number
  private readonly buf = Buffer.allocUnsafe(CHUNK)
  private used = 0
  private written = 0
  private readonly hash = createHash('sha256')
  private offsets: Uint32Array
  count = 0
  readonly hardlinks: number[] = []

  /** `lines`: the lines expected (entries and the END line); more grow the table. */
  constructor(private readonly path: string, header: string, lines: number) {
    this.offsets = new Uint32Array(Math.max(16, lines))
    this.fd = openSync(path, 'w', 0o644)
    this.put(Buffer.from(header), 0, Buffer.byteLength(header))
  }

  copy(t: Lines, from: number, to: number): void {
    const base = this.written + this.used - t.starts[from]
    for (let i = from; i < to; i++) this.offset(base + t.starts[i], t.buf[t.starts[i]])
    this.put(t.buf, t.starts[from], t.starts[to])
  }

  line(text: string): void {
    const bytes = Buffer.from(text + '\n')
    this.offset(this.written + this.used, bytes[0])
    this.put(bytes, 0, bytes.length)
  }

  /** The END line, then fsync: the file is complete. */
  end(): { sha256: string; size: number } {
    this.flush()
    this.offset(this.written, 0)
    this.count--
    const end = Buffer.from(`END\t${this.hash.copy().digest('hex')}\n`)
    this.put(end, 0, end.length)
    this.flush()
    fsyncSync(this.fd)
    closeSync(this.fd)
    return { sha256: this.hash.digest('hex'), size: this.written }
  }

  starts(): Uint32Array {
    return this.offsets.subarray(0, this.count + 1)
  }

  /** A failed merge: no half list left behind. */
  abandon(): void {
    try {
      closeSync(this.fd)
    } catch {
      // closed by end()
    }
    rmSync(this.path, { force: true })
  }

  private offset(at: number, first: number): void {
    if (this.count + 1 >= this.offsets.length) {
      const grown = new Uint32Array(this.offsets.length * 2)
      grown.set(this.offsets)
      this.offsets = grown
    }
    if (first === 0x68) this.hardlinks.push(this.count) // 'h'
    this.offsets[this.count++] = at
  }

  private put(src: Buffer, from: number, to: number): void {
    if (this.used + (to - from) > this.buf.length) this.flush()
    if (to - from > this.buf.length) {
      this.out(src.subarray(from, to))
      return
    }
    this.used += src.copy(this.buf, this.used, from, to)
  }

  private flush(): void {
    if (this.used > 0) this.out(this.buf.subarray(0, this.used))
    this.used = 0
  }

  private out(bytes: Buffer): void {
    this.hash.update(bytes)
    for (let at = 0; at < bytes.length;) at += writeSync(this.fd, bytes, at, bytes.length - at)
    this.written += bytes.length
  }
}

/** Each delta's lines in path order (checked), the newest line for a path winning. */
function compose(deltas: Delta[]): Change[] {
  const byKey = new Map<string, Change>()
  for (const d of deltas) {
    let previous: Buffer | undefined
    for (const line of d.lines) {
      const key = pathKey(line)
      if (previous && Buffer.compare(previous, key) >= 0) throw new DeltaError('lines not sorted by path')
      previous = key
      byKey.set(key.toString('latin1'), { key, line })
    }
  }
  return [...byKey.values()].sort((a, b) => Buffer.compare(a.key, b.key))
}

/** What a pass over a data.dsync's bytes is told: its header, every byte read (to hash), each run of whole entry lines. */
export interface ListRuns {
  header(text: string): void
  bytes?(chunk: Buffer): void
  /** Entry lines in order, in a buffer reused for the next run: copy what is kept. */
  run(lines: Lines): void
}

/**
 * A data.dsync chunk by chunk into one reused buffer (the partial line at a chunk's end is
 * moved to its start): its header read once, then each run of whole entry lines handed on,
 * up to the END line. No buffer per chunk: at 1M entries that was ~160 MB of garbage the GC
 * took its time to collect.
 */
export function readListRuns(src: ListReader, on: ListRuns): void {
  let buf = Buffer.allocUnsafe(2 * CHUNK)
  let have = 0
  let position = 0
  let inBody = false
  for (;;) {
    if (have + CHUNK > buf.length) {
      // A line longer than a chunk (a long symlink target): room for it.
      const grown = Buffer.allocUnsafe(buf.length * 2)
      buf.copy(grown, 0, 0, have)
      buf = grown
    }
    const n = src.read(buf.subarray(have, have + CHUNK), position)
    if (n === 0) throw new DeltaError('DEST data.dsync: not a complete data.dsync')
    position += n
    on.bytes?.(buf.subarray(have, have + n))
    const end = have + n
    let from = 0
    if (!inBody) {
      const bodyAt = buf.subarray(0, end).indexOf('\n\n')
      if (bodyAt < 0) {
        have = end
        continue
      }
      on.header(buf.toString('latin1', 0, bodyAt + 1))
      from = bodyAt + 2
      inBody = true
    }
    const last = buf.subarray(0, end).lastIndexOf(0x0a)
    const lines = lineStarts(buf.subarray(from, Math.max(from, last + 1)), runStarts)
    on.run(lines)
    if (lines.ended) {
      // Whatever follows the END line is not read: it would only be hashed.
      if (!on.bytes) return
      const chunk = buf.subarray(0, CHUNK)
      for (let more = src.read(chunk, position); more > 0; position += more, more = src.read(chunk, position)) on.bytes(chunk.subarray(0, more))
      return
    }
    const rest = Math.max(from, last + 1)
    have = end - rest
    buf.copy(buf, 0, rest, end)
  }
}

/** A growable offsets array, reused from one run to the next. */
export interface StartsHolder {
  starts: Uint32Array
}

const runStarts: StartsHolder = { starts: new Uint32Array(1 << 14) }

/** Offsets of the entry lines of a run of whole lines, up to an END line (then `ended`). */
export function lineStarts(buf: Buffer, holder: StartsHolder): Lines & { ended: boolean } {
  let count = 0
  let at = 0
  let ended = false
  while (at < buf.length) {
    if (buf[at] === 0x45 && buf[at + 1] === 0x4e && buf[at + 2] === 0x44 && buf[at + 3] === 0x09) {
      ended = true
      break
    }
    if (count + 2 >= holder.starts.length) {
      const grown = new Uint32Array(holder.starts.length * 2)
      grown.set(holder.starts)
      holder.starts = grown
    }
    holder.starts[count++] = at
    at = buf.indexOf(0x0a, at) + 1
  }
  holder.starts[count] = at
  return { buf, starts: holder.starts, count, ended }
}

/** The merge of the old lines with the changes into `out`, keeping the header's counts. */
class Merge {
  entries = 0
  files = 0
  bytes = 0
  previousEntries = 0
  readonly before = new Map<string, string | undefined>()
  private ci = 0

  constructor(private readonly out: Sink, private readonly changes: Change[]) {}

  header(text: string): void {
    if (!text.startsWith(`${MANIFEST_MAGIC} ${MANIFEST_VERSION}\n`)) throw new DeltaError('DEST data.dsync: not a data.dsync file')
    const count = (name: string) => Number(new RegExp(`\\n${name} (\\d+)\\n`).exec(text)?.[1] ?? NaN)
    this.entries = this.previousEntries = count('entries')
    this.files = count('files')
    this.bytes = count('bytes')
  }

  /** Old lines [0, count) of a run: copied, but where a change's path falls among them. */
  region(t: Lines): void {
    let i = 0
    while (i < t.count && this.ci < this.changes.length) {
      const c = this.changes[this.ci]
      const at = i + lowerBound({ buf: t.buf, starts: t.starts.subarray(i), count: t.count - i }, c.key)
      this.copy(t, i, at)
      i = at
      if (at >= t.count) return // the change's path comes after this run
      const same = comparePathAt(t, at, c.key) === 0
      this.remember(c, same ? t.buf.toString('utf8', t.starts[at], t.starts[at + 1] - 1) : undefined)
      if (same) {
        this.drop(t.buf, t.starts[at])
        i++
      }
      this.put(c)
    }
    this.copy(t, i, t.count)
  }

  /** The changes whose paths come after every old line. */
  rest(): void {
    for (; this.ci < this.changes.length;) {
      const c = this.changes[this.ci]
      this.remember(c, undefined)
      this.put(c)
    }
  }

  private copy(t: Lines, from: number, to: number): void {
    if (to > from) this.out.copy(t, from, to)
  }

  private remember(c: Change, line: string | undefined): void {
    const path = c.key.toString('utf8')
    if (!this.before.has(path)) this.before.set(path, line)
  }

  /** An old entry line replaced or removed: the counts lose it. */
  private drop(buf: Buffer, at: number): void {
    this.entries--
    if (buf[at] === 0x66 && buf[at + 1] === 0x09) {
      this.files--
      this.bytes -= sizeOf(buf.toString('latin1', at, buf.indexOf(0x0a, at)))
    }
  }

  private put(c: Change): void {
    this.ci++
    if (c.line.startsWith('-\t')) return
    this.out.line(c.line)
    this.entries++
    if (c.line.startsWith('f\t')) {
      this.files++
      this.bytes += sizeOf(c.line)
    }
  }
}

function sizeOf(line: string): number {
  return Number(line.split('\t', 3)[2])
}
