import { createHash, type Hash } from 'node:crypto'
import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
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
  const m = new Merge(Buffer.allocUnsafe(HEAD_ROOM + src.size + room + 128), changes)
  const fromHash = createHash('sha256')
  readLines(src, fromHash, m)
  m.rest()
  const head = Buffer.from(`${MANIFEST_MAGIC} ${MANIFEST_VERSION}\npiece-length ${deltas[deltas.length - 1].pieceLength}\nentries ${m.entries}\nfiles ${m.files}\nbytes ${m.bytes}\n\n`)
  const start = HEAD_ROOM - head.length
  head.copy(m.out, start)
  const hash = createHash('sha256').update(m.out.subarray(start, m.w))
  const end = Buffer.from(`END\t${hash.copy().digest('hex')}\n`)
  end.copy(m.out, m.w)
  const manifest = m.out.subarray(start, m.w + end.length)
  return { manifest, sha256: hash.update(end).digest('hex'), fromSha256: fromHash.digest('hex'), before: m.before, previousEntries: m.previousEntries }
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

/**
 * The old list chunk by chunk into one reused buffer (the partial line at a chunk's end is
 * moved to its start): its header read once, then each run of whole entry lines handed to the
 * merge. No buffer per chunk: at 1M entries that was ~160 MB of garbage the GC took its time
 * to collect.
 */
function readLines(src: ListReader, fromHash: Hash, m: Merge): void {
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
    fromHash.update(buf.subarray(have, have + n))
    const end = have + n
    let from = 0
    if (!inBody) {
      const bodyAt = buf.subarray(0, end).indexOf('\n\n')
      if (bodyAt < 0) {
        have = end
        continue
      }
      m.header(buf.toString('latin1', 0, bodyAt + 1))
      from = bodyAt + 2
      inBody = true
    }
    const last = buf.subarray(0, end).lastIndexOf(0x0a)
    const lines = lineStarts(buf.subarray(from, Math.max(from, last + 1)))
    m.region(lines)
    if (lines.ended) {
      // Whatever follows the END line is not read: it would only be hashed.
      const chunk = buf.subarray(0, CHUNK)
      for (let more = src.read(chunk, position); more > 0; position += more, more = src.read(chunk, position)) fromHash.update(chunk.subarray(0, more))
      return
    }
    const rest = Math.max(from, last + 1)
    have = end - rest
    buf.copy(buf, 0, rest, end)
  }
}

let startsBuf = new Uint32Array(1 << 14)

/** Offsets of the entry lines of a run of whole lines, up to an END line (then `ended`). */
function lineStarts(buf: Buffer): Lines & { ended: boolean } {
  let count = 0
  let at = 0
  let ended = false
  while (at < buf.length) {
    if (buf[at] === 0x45 && buf[at + 1] === 0x4e && buf[at + 2] === 0x44 && buf[at + 3] === 0x09) {
      ended = true
      break
    }
    if (count + 2 >= startsBuf.length) {
      const grown = new Uint32Array(startsBuf.length * 2)
      grown.set(startsBuf)
      startsBuf = grown
    }
    startsBuf[count++] = at
    at = buf.indexOf(0x0a, at) + 1
  }
  startsBuf[count] = at
  return { buf, starts: startsBuf, count, ended }
}

/** The merge of the old lines with the changes into `out`, keeping the header's counts. */
class Merge {
  w = HEAD_ROOM
  entries = 0
  files = 0
  bytes = 0
  previousEntries = 0
  readonly before = new Map<string, string | undefined>()
  private ci = 0

  constructor(readonly out: Buffer, private readonly changes: Change[]) {}

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
    if (to > from) this.w += t.buf.copy(this.out, this.w, t.starts[from], t.starts[to])
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
    this.w += this.out.write(c.line + '\n', this.w)
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
