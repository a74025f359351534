import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { open, rename, rm } from 'node:fs/promises'
import { linesFile } from './lines-file.js'
import { readManifestLines, type ManifestLines } from './manifest-lines.js'
import type { RepoFiles } from './paths.js'

/**
 * The line offsets of a data.dsync, kept beside it in `.dsync/lines` by the gendsync that
 * wrote that list (a hinted run has them from the splice; a full run of a sharded repository
 * indexes its list while the outputs are committed), so the next hinted run does not find
 * every newline of the previous list again: at 200k files ~236,000 calls of indexOf over 30 MB,
 * 75-125 ms of a run's main thread when it is the process's first pass over the list (docs/
 * SCALE.md, sessions 18 and 19). Only a cache, as `.dsync/tables` is (table-cache.ts): named
 * after the SHA-256 of the data.dsync it describes, sealed by its own SHA-256, and checked
 * against the list's bytes; a stale, torn or damaged file is ignored and the list indexed.
 *
 * Layout: a 128-byte head (`DSYNC-LINES 1 <list sha256> <count>`, padded with spaces, ending in
 * a newline), then `count + 1` uint32 offsets (each entry line's, then the END line's), then the
 * SHA-256 of everything before it.
 */
const MAGIC = 'DSYNC-LINES 1'
const HEAD = 128

/** The lines file's bytes, if there is one (a run without the CLI's read-ahead reads it here). */
export function readLinesFile(files: RepoFiles): Buffer | undefined {
  try {
    return readFileSync(linesFile(files))
  } catch {
    return undefined
  }
}

/**
 * Writes the offsets of the data.dsync whose SHA-256 is `listSha256` (`starts`: count + 1
 * values). Not fsync'ed, and written while that data.dsync is being committed, as the tables
 * are: after a crash or a failed commit the file is torn or names another list, and is ignored.
 */
export async function saveLines(file: string, listSha256: string, starts: Uint32Array): Promise<void> {
  const count = starts.length - 1
  const head = Buffer.from(`${MAGIC} ${listSha256} ${count}`.padEnd(HEAD - 1, ' ') + '\n', 'latin1')
  const body = Buffer.from(starts.buffer, starts.byteOffset, starts.byteLength)
  const seal = createHash('sha256').update(head).update(body).digest()
  try {
    const out = await open(`${file}.tmp`, 'w')
    try {
      const { bytesWritten } = await out.writev([head, body, seal])
      if (bytesWritten !== HEAD + body.length + 32) throw new Error('short write')
    } finally {
      await out.close()
    }
    await rename(`${file}.tmp`, file)
  } catch {
    // Only a cache: without it the next hinted run indexes the list, as it did before.
    await rm(`${file}.tmp`, { force: true }).catch(() => undefined)
  }
}

/**
 * readManifestLines (manifest-lines.ts) with the offsets taken from `cached` (the lines file's
 * bytes) when they are this list's: the same result, the same refusals. The list is hashed
 * first (its SHA-256 names the offsets that fit it), then indexed only if they do not.
 */
export function readListLines(buf: Buffer, file: string, cached: Buffer | undefined): ManifestLines {
  return readManifestLines(buf, file, cached && (list => offsetsFor(cached, list.fileSha256, buf, list.bodyAt, list.endAt, list.entries)))
}

/**
 * The offsets in `cached` when it is sealed, names the list whose SHA-256 is `listSha256`, and
 * holds every line of the list: as many offsets as the header has entries (one line each), the
 * first just after the header's end, the last the END line's, rising, each just after a
 * newline. Between those two ends exactly that many positions follow a newline, so offsets that
 * pass are the list's own, whatever wrote the file.
 */
function offsetsFor(cached: Buffer, listSha256: string, buf: Buffer, bodyAt: number, endAt: number, entries?: number): Uint32Array | undefined {
  if (cached.length < HEAD + 8 + 32) return undefined
  const head = cached.toString('latin1', 0, HEAD).trimEnd().split(' ')
  const count = Number(head[3])
  if (`${head[0]} ${head[1]}` !== MAGIC || head[2] !== listSha256) return undefined
  if (count !== entries || !Number.isSafeInteger(count) || cached.length !== HEAD + (count + 1) * 4 + 32) return undefined
  const end = cached.length - 32
  if (!createHash('sha256').update(cached.subarray(0, end)).digest().equals(cached.subarray(end))) return undefined
  // A copy: the bytes may sit at any offset of a read-ahead buffer (a Uint32Array view needs 4).
  const starts = new Uint32Array(count + 1)
  Buffer.from(starts.buffer).set(cached.subarray(HEAD, end))
  if (starts[0] !== bodyAt + 2 || starts[count] !== endAt + 1) return undefined
  for (let i = 1; i <= count; i++) {
    if (starts[i] <= starts[i - 1] || buf[starts[i] - 1] !== 0x0a) return undefined
  }
  return starts
}
