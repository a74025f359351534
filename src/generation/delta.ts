import { createHash } from 'node:crypto'
import { unescapePath } from '../manifest/escape.js'
import { MAGIC as MANIFEST_MAGIC, VERSION as MANIFEST_VERSION } from '../manifest/format.js'
import { comparePathAt, indexLines, lowerBound, pathField, pathKeyAt, type LineTable } from '../manifest/manifest-lines.js'

/**
 * A delta: the change from one data.dsync to the next, in data.dsync's own line format
 * (docs/SCALE.md):
 *
 *   DSYNC-DELTA 1
 *   seq N
 *   from <sha256 of the old data.dsync>
 *   to <sha256 of the new data.dsync>
 *   piece-length P
 *   upserts U
 *   removals R
 *   <empty line>
 *   <entry line of data.dsync, for an entry added or changed>   \
 *   -<TAB><escaped path>, for an entry removed                  / sorted by path, one per path
 *   END<TAB><sha256 of every byte before this line>
 *
 * Both operations work on lines, not parsed entries (line offsets, manifest-lines.ts): a delta
 * is applied by splicing its lines into the old list, and the result is checked by its SHA-256 and then parsed like any upstream
 * data.dsync, so every hostile-input rule of FORMAT.md still applies to what reaches DEST.
 */
export const DELTA_MAGIC = 'DSYNC-DELTA 1'

export interface DeltaHeader {
  seq: number
  from: string
  to: string
  pieceLength: number
  upserts: number
  removals: number
}

export interface Delta extends DeltaHeader {
  /** Body lines, sorted by path: entry lines and `-\tpath` removals. */
  lines: string[]
}

export class DeltaError extends Error {}

function table(bytes: Buffer): LineTable {
  const t = indexLines(bytes)
  if (typeof t === 'string') throw new DeltaError('not a complete data.dsync')
  return t
}

/** The (unescaped) path of an entry line or a removal line, as UTF-8 bytes for sorting. */
export function pathKey(line: string): Buffer {
  const fields = line.split('\t')
  const escaped = fields[0] === '-' ? fields[1] : fields[5]
  const path = escaped === undefined ? undefined : unescapePath(escaped)
  if (path === undefined) throw new DeltaError(`malformed line "${line.slice(0, 80)}"`)
  return Buffer.from(path, 'utf8')
}

/** True when lines [i, i+n) of `a` are byte for byte lines [j, j+n) of `b`. */
function sameRun(a: LineTable, i: number, b: LineTable, j: number, n: number): boolean {
  return a.buf.compare(b.buf, b.starts[j], b.starts[j + n], a.starts[i], a.starts[i + n]) === 0
}


function lineText(t: LineTable, i: number): string {
  return t.buf.toString('utf8', t.starts[i], t.starts[i + 1] - 1)
}

/**
 * The delta from `oldBytes` to `newBytes` (two data.dsync files). Runs of identical lines are
 * skipped by comparing growing spans of bytes (1, 2, 4, ... lines), so the cost is the bytes
 * compared plus a few steps per changed line, not a parse of either list. `known` passes
 * SHA-256s the caller already has, `tables` the two lists' line offsets when it has them (a
 * hinted gendsync: two passes over 30 MB at 200k files spared).
 */
export function makeDelta(
  seq: number, oldBytes: Buffer, newBytes: Buffer, known?: { from: string; to: string }, tables?: { old: LineTable; new: LineTable },
): Buffer {
  const a = tables?.old ?? table(oldBytes)
  const b = tables?.new ?? table(newBytes)
  const lines: string[] = []
  let upserts = 0
  let i = 0
  let j = 0
  let step = 1
  while (i < a.count || j < b.count) {
    if (i < a.count && j < b.count) {
      const n = Math.min(step, a.count - i, b.count - j)
      if (sameRun(a, i, b, j, n)) {
        i += n
        j += n
        step = Math.min(step * 2, 1 << 14)
        continue
      }
      step = 1
      if (n > 1) continue
    }
    const c = i >= a.count ? 1 : j >= b.count ? -1 : comparePathAt(a, i, pathKeyAt(b, j))
    if (c < 0) {
      const [from, to] = pathField(a, i++)
      lines.push(`-\t${a.buf.toString('utf8', from, to)}`)
      continue
    }
    lines.push(lineText(b, j++))
    upserts++
    if (c === 0) i++
  }
  const pieceLength = Number(/\npiece-length (\d+)\n/.exec(newBytes.toString('latin1', 0, b.bodyAt + 1))?.[1])
  return serializeDelta({
    seq, from: known?.from ?? sha256Hex(oldBytes), to: known?.to ?? sha256Hex(newBytes), pieceLength, upserts, removals: lines.length - upserts,
  }, lines)
}

export function serializeDelta(h: DeltaHeader, lines: string[]): Buffer {
  const head = [DELTA_MAGIC, `seq ${h.seq}`, `from ${h.from}`, `to ${h.to}`, `piece-length ${h.pieceLength}`,
    `upserts ${h.upserts}`, `removals ${h.removals}`, '']
  const body = Buffer.from([...head, ...lines].join('\n') + '\n')
  return Buffer.concat([body, Buffer.from(`END\t${sha256Hex(body)}\n`)])
}

export function parseDelta(bytes: Buffer): Delta {
  const text = bytes.toString('utf8')
  const endAt = text.lastIndexOf('\nEND\t') + 1
  if (!text.startsWith(DELTA_MAGIC + '\n') || endAt <= 0 || text.slice(endAt) !== `END\t${sha256Hex(bytes.subarray(0, Buffer.byteLength(text.slice(0, endAt))))}\n`) {
    throw new DeltaError('not a delta, or its END checksum does not match')
  }
  const blank = text.indexOf('\n\n')
  const fields = new Map<string, string>()
  for (const line of text.slice(DELTA_MAGIC.length + 1, blank).split('\n')) {
    const sp = line.indexOf(' ')
    fields.set(line.slice(0, sp), line.slice(sp + 1))
  }
  const num = (k: string) => {
    const v = fields.get(k)
    if (v === undefined || !/^\d{1,15}$/.test(v)) throw new DeltaError(`header lacks ${k}`)
    return Number(v)
  }
  const hex = (k: string) => {
    const v = fields.get(k)
    if (v === undefined || !/^[0-9a-f]{64}$/.test(v)) throw new DeltaError(`header lacks ${k}`)
    return v
  }
  const body = text.slice(blank + 2, endAt)
  const lines = body === '' ? [] : body.slice(0, -1).split('\n')
  const d: Delta = { seq: num('seq'), from: hex('from'), to: hex('to'), pieceLength: num('piece-length'), upserts: num('upserts'), removals: num('removals'), lines }
  if (d.upserts + d.removals !== lines.length) throw new DeltaError(`header counts ${d.upserts + d.removals} lines, found ${lines.length}`)
  return d
}

/**
 * Applies a delta to a data.dsync: each delta line found by binary search, the old lines
 * between copied as runs of bytes, the header's counts adjusted by the lines removed and
 * added, the END line re-sealed. The caller checks the result's SHA-256 against the record
 * and parses it before trusting any of it.
 */
export function applyDelta(oldBytes: Buffer, delta: Delta): Buffer {
  // Hashed piece by piece and joined once: at 1M entries the list is 150 MB, and a second
  // copy of it (body, then body + END) was the client's peak.
  const parts = spliceDelta(oldBytes, delta)
  const hash = createHash('sha256')
  for (const p of parts) hash.update(p)
  parts.push(Buffer.from(`END\t${hash.digest('hex')}\n`))
  return Buffer.concat(parts)
}

/**
 * True when `delta` applied to `oldBytes` gives `target` (a data.dsync) up to its END line:
 * gendsync's check of each delta it writes (the END line is a function of the same bytes, so
 * no SHA-256 of the whole list). The pieces are compared with `target` where they land, not
 * joined first: a 30 MB buffer at 200k files, whose fresh pages alone cost ~20 ms.
 */
export function deltaReproduces(oldBytes: Buffer, delta: Delta, target: Buffer, oldLines?: LineTable): boolean {
  const end = target.lastIndexOf('\nEND\t') + 1
  let at = 0
  for (const piece of spliceDelta(oldBytes, delta, oldLines)) {
    if (at + piece.length > end || piece.compare(target, at, at + piece.length) !== 0) return false
    at += piece.length
  }
  return end > 0 && at === end
}

/** The new list's bytes before its END line, as the header and runs of old and delta lines. */
function spliceDelta(oldBytes: Buffer, delta: Delta, oldLines?: LineTable): Buffer[] {
  const old = oldLines ?? table(oldBytes)
  const count = (name: string) => Number(new RegExp(`\\n${name} (\\d+)\\n`).exec(oldBytes.toString('latin1', 0, old.bodyAt + 1))?.[1] ?? NaN)
  let entries = count('entries')
  let files = count('files')
  let bytes = count('bytes')
  const chunks: Buffer[] = []
  let cursor = 0
  let previous: Buffer | undefined
  for (const line of delta.lines) {
    const key = pathKey(line)
    if (previous && Buffer.compare(previous, key) >= 0) throw new DeltaError('lines not sorted by path')
    previous = key
    const at = lowerBound({ buf: old.buf, starts: old.starts.subarray(cursor), count: old.count - cursor }, key) + cursor
    chunks.push(old.buf.subarray(old.starts[cursor], old.starts[at]))
    cursor = at
    if (at < old.count && comparePathAt(old, at, key) === 0) {
      entries--
      if (old.buf[old.starts[at]] === 0x66 && old.buf[old.starts[at] + 1] === 0x09) {
        files--
        bytes -= sizeField(lineText(old, at))
      }
      cursor = at + 1
    }
    if (line.startsWith('-\t')) continue
    chunks.push(Buffer.from(line + '\n'))
    entries++
    if (line.startsWith('f\t')) {
      files++
      bytes += sizeField(line)
    }
  }
  chunks.push(old.buf.subarray(old.starts[cursor], old.starts[old.count]))
  const head = `${MANIFEST_MAGIC} ${MANIFEST_VERSION}\npiece-length ${delta.pieceLength}\nentries ${entries}\nfiles ${files}\nbytes ${bytes}\n\n`
  return [Buffer.from(head), ...chunks]
}

function sizeField(line: string): number {
  return Number(line.split('\t', 3)[2])
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}
