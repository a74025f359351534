import { createHash } from 'node:crypto'
import { unescapePath } from '../manifest/escape.js'
import { MAGIC as MANIFEST_MAGIC, VERSION as MANIFEST_VERSION } from '../manifest/format.js'

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
 * Both operations work on lines, not parsed entries: a delta is applied by merging two sorted
 * lists of lines, and the result is checked by its SHA-256 and then parsed like any upstream
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

/** The lines of a data.dsync: its header lines (magic included) and its entry lines. */
export function splitManifest(bytes: Buffer): { header: string[]; entries: string[] } {
  const text = bytes.toString('utf8')
  const blank = text.indexOf('\n\n')
  const endAt = text.lastIndexOf('\nEND\t')
  if (blank < 0 || endAt < blank) throw new DeltaError('not a complete data.dsync')
  const header = text.slice(0, blank).split('\n')
  const body = text.slice(blank + 2, endAt + 1)
  return { header, entries: body === '' ? [] : body.slice(0, -1).split('\n') }
}

/** The (unescaped) path of an entry line or a removal line, as UTF-8 bytes for sorting. */
function pathKey(line: string): Buffer {
  const fields = line.split('\t')
  const escaped = fields[0] === '-' ? fields[1] : fields[5]
  const path = escaped === undefined ? undefined : unescapePath(escaped)
  if (path === undefined) throw new DeltaError(`malformed line "${line.slice(0, 80)}"`)
  return Buffer.from(path, 'utf8')
}

/** Compares two sorted lists of lines by path; calls back per path present in either. */
function mergeByPath(a: string[], b: string[], each: (oldLine: string | undefined, newLine: string | undefined) => void): void {
  let i = 0
  let j = 0
  let ka = i < a.length ? pathKey(a[i]) : undefined
  let kb = j < b.length ? pathKey(b[j]) : undefined
  while (ka || kb) {
    const c = !ka ? 1 : !kb ? -1 : Buffer.compare(ka, kb)
    each(c <= 0 ? a[i] : undefined, c >= 0 ? b[j] : undefined)
    if (c <= 0) ka = ++i < a.length ? pathKey(a[i]) : undefined
    if (c >= 0) {
      const prev = kb!
      kb = ++j < b.length ? pathKey(b[j]) : undefined
      if (kb && Buffer.compare(prev, kb) >= 0) throw new DeltaError('lines not sorted by path')
    }
  }
}

/** The delta from `oldBytes` to `newBytes` (two data.dsync files). */
export function makeDelta(seq: number, oldBytes: Buffer, newBytes: Buffer): Buffer {
  const from = splitManifest(oldBytes).entries
  const next = splitManifest(newBytes)
  const lines: string[] = []
  let upserts = 0
  mergeByPath(from, next.entries, (o, n) => {
    if (n === undefined) lines.push(`-\t${o!.split('\t')[5]}`)
    else if (o !== n) {
      lines.push(n)
      upserts++
    }
  })
  const pieceLength = Number(next.header.find(h => h.startsWith('piece-length '))?.slice(13))
  return serializeDelta({
    seq, from: sha256Hex(oldBytes), to: sha256Hex(newBytes), pieceLength, upserts, removals: lines.length - upserts,
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
 * Applies a delta to a data.dsync: merge, recount the header, re-seal the END line. The caller
 * checks the result's SHA-256 against the record and parses it before trusting any of it.
 */
export function applyDelta(oldBytes: Buffer, delta: Delta): Buffer {
  const old = splitManifest(oldBytes)
  const entries: string[] = []
  mergeByPath(old.entries, delta.lines, (o, d) => {
    if (d === undefined) entries.push(o!)
    else if (!d.startsWith('-\t')) entries.push(d)
  })
  let files = 0
  let bytes = 0
  for (const line of entries) {
    if (line.startsWith('f\t')) {
      files++
      bytes += Number(line.split('\t')[2])
    }
  }
  const head = [`${MANIFEST_MAGIC} ${MANIFEST_VERSION}`, `piece-length ${delta.pieceLength}`, `entries ${entries.length}`, `files ${files}`, `bytes ${bytes}`, '']
  const body = Buffer.from([...head, ...entries].join('\n') + '\n')
  return Buffer.concat([body, Buffer.from(`END\t${sha256Hex(body)}\n`)])
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}
