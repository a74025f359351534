import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { open, rename, rm } from 'node:fs/promises'
import type { ContentTable, TableCosts } from './content-table.js'
import type { Lines } from './manifest-lines.js'

/**
 * The content table and shard costs of a data.dsync (content-table.ts), kept beside it in
 * `.dsync/tables` by gendsync (a hinted run, and a full run of a sharded repository:
 * src/publish/generate.ts) so the next hinted run starts from them instead of
 * parsing every line of the previous list again (at 200k files ~35 ms for the table and
 * ~90 ms for the costs, one sixth of a hinted run: docs/SCALE.md). It is only a cache: named
 * after the SHA-256 of the data.dsync it describes and sealed by its own SHA-256, so a stale,
 * torn or damaged file is ignored and the tables are computed from data.dsync as before.
 *
 * Layout: a 128-byte head (`DSYNC-TABLES 1 <list sha256> <piece length> <count>`, padded with
 * spaces, ending in a newline), then per field one array of `count` values: length, bytes,
 * tokens, entry (float64); line, pathFrom, pathTo, hash (uint32); then the SHA-256 of
 * everything before it.
 */
const MAGIC = 'DSYNC-TABLES 1'
const HEAD = 128
const F64 = ['length', 'bytes', 'tokens', 'entry'] as const
const U32 = ['line', 'pathFrom', 'pathTo', 'hash'] as const
const ROW = F64.length * 8 + U32.length * 4

export interface CachedTables {
  table: ContentTable
  costs: TableCosts
}

/**
 * Writes the tables of the data.dsync whose SHA-256 is `listSha256`. Not fsync'ed, and written
 * while that data.dsync is still being committed (generate.ts): after a crash, or a commit
 * that fails, the file is torn or names a list that is not data.dsync, and the next run
 * computes the tables itself.
 */
export async function saveTables(file: string, listSha256: string, pieceLength: number, t: CachedTables): Promise<void> {
  const n = t.table.count
  const head = Buffer.from(`${MAGIC} ${listSha256} ${pieceLength} ${n}`.padEnd(HEAD - 1, ' ') + '\n', 'latin1')
  // The head, the arrays' own bytes (not copied into one buffer: 9.6 MB at 200k files), the seal.
  const arrays = [t.table.length, t.costs.bytes, t.costs.tokens, t.costs.entry, t.table.line, t.table.pathFrom, t.table.pathTo, t.costs.hash]
  const parts = [head, ...arrays.map(a => Buffer.from(a.buffer, a.byteOffset, a.byteLength))]
  const seal = createHash('sha256')
  for (const part of parts) seal.update(part)
  parts.push(seal.digest())
  // Written on a libuv thread while the main thread commits the outputs.
  try {
    const out = await open(`${file}.tmp`, 'w')
    try {
      const { bytesWritten } = await out.writev(parts)
      if (bytesWritten !== HEAD + n * ROW + 32) throw new Error('short write')
    } finally {
      await out.close()
    }
    await rename(`${file}.tmp`, file)
  } catch {
    // Only a cache: without it the next hinted run parses data.dsync, as it did before.
    await rm(`${file}.tmp`, { force: true }).catch(() => undefined)
  }
}

/** The tables saved for `lines` (the data.dsync whose SHA-256 is `listSha256`), or undefined. `read`: the file's bytes, read already. */
export function loadTables(file: string, lines: Lines, listSha256: string, pieceLength: number, read?: Buffer): CachedTables | undefined {
  let buf: Buffer
  try {
    buf = read ?? readFileSync(file)
  } catch {
    return undefined
  }
  if (buf.length < HEAD + 32) return undefined
  const head = buf.toString('latin1', 0, HEAD).trimEnd().split(' ')
  const n = Number(head[4])
  if (`${head[0]} ${head[1]}` !== MAGIC || head[2] !== listSha256 || Number(head[3]) !== pieceLength) return undefined
  if (!Number.isSafeInteger(n) || buf.length !== HEAD + n * ROW + 32) return undefined
  const end = buf.length - 32
  if (!createHash('sha256').update(buf.subarray(0, end)).digest().equals(buf.subarray(end))) return undefined
  // Views of the file's bytes (a whole-file read starts its own ArrayBuffer: aligned), not copies.
  const aligned = buf.byteOffset % 8 === 0 ? buf : Buffer.from(buf)
  let at = aligned.byteOffset + HEAD
  const next = (size: number) => {
    at += n * size
    return at - n * size
  }
  const [length, bytes, tokens, entry] = F64.map(() => new Float64Array(aligned.buffer, next(8), n))
  const [line, pathFrom, pathTo, hash] = U32.map(() => new Uint32Array(aligned.buffer, next(4), n))
  // The checksum proves the bytes are those written; this, that they fit this list.
  for (let c = 0; c < n; c++) {
    if (line[c] >= lines.count || pathFrom[c] < lines.starts[line[c]] || pathTo[c] < pathFrom[c] || pathTo[c] >= lines.starts[line[c] + 1]) return undefined
  }
  return { table: { lines, count: n, line, length, pathFrom, pathTo }, costs: { bytes, tokens, hash, entry } }
}
