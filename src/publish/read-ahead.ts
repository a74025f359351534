import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { linesFile } from '../manifest/lines-file.js'
import { repoFiles } from '../manifest/paths.js'
import { WarmMemory } from '../manifest/warm-memory.js'
import { prefetchStamped, sameFile, type FileStamp } from '../util/prefetch.js'

/** Files of the previous generation read on libuv's threads before the run holds its lock, and memory warmed for the new one's outputs. */
export type ReadAhead = Promise<{ files: Map<string, { buf: Buffer; stamp: FileStamp }>; memory?: WarmMemory }>

/** Of the previous shard files' bytes, the share warmed for new shards (the rest go into previous shards' buffers done with). */
const SHARD_SHARE = 0.75
/** Shard bytes warmed at most (a hinted run's new shards at 1M files are ~150 MB; most go into spares). */
const SHARD_BYTES_MAX = 64 << 20
/** Memory warmed at most: beyond it the new list (1M files: ~150 MB) is allocated as before, only the rest warmed. */
const WARM_BYTES_MAX = 128 << 20

/**
 * What a hinted run reads first (data.dsync, ~30 MB at 200k files; the index torrent; the
 * tables; the list's line offsets), started by the CLI before it loads gendsync's modules, so
 * the reads overlap that loading instead of following it on the main thread. Beside them,
 * memory for the new list, content table and shard torrents is touched on libuv's threads
 * (warm-memory.ts): about the previous list's and tables' sizes and three quarters of the
 * previous shard files' (sizes only: nothing is trusted here).
 */
export function readAheadGeneration(save: string, name: string): ReadAhead {
  const files = repoFiles(save, name)
  const reads = prefetchStamped([files.manifest, files.torrent, files.tables, linesFile(files)])
  // Queued after the reads: libuv's threads take jobs in order, and the list is needed first.
  const bytes = warmBytes(files.manifest, files.shards, files.tables)
  const memory = bytes > 0 ? new WarmMemory(bytes) : undefined
  return reads.then(got => ({ files: got, memory }))
}

function warmBytes(manifest: string, shardsDir: string, tables: string): number {
  let list: number
  try {
    list = statSync(manifest).size
  } catch {
    return 0
  }
  // The new content table, its runs of kept rows and its costs (hinted.ts: 28 + 28 bytes a
  // content file) and the shard splice's offsets into the previous shards (shard-rebuild.ts: 20
  // bytes a previous one), against the previous tables' 48.
  let forTables = 0
  try {
    forTables = Math.ceil((statSync(tables).size * 76) / 48) + 64
  } catch {
    // No tables (the first hinted run after a full one): those arrays are allocated as before.
  }
  let shards = 0
  try {
    for (const f of readdirSync(shardsDir)) if (f.endsWith('.torrent')) shards += statSync(join(shardsDir, f)).size
  } catch {
    // No shards (one torrent) or unreadable: memory for the list only.
  }
  // The new list is about the previous one's size: room for ~3% more (a bigger one is allocated as before).
  const forList = list + Math.ceil(list / 32)
  const forShards = Math.min(SHARD_BYTES_MAX, Math.ceil(shards * SHARD_SHARE))
  return forList + forTables + forShards <= WARM_BYTES_MAX ? forList + forTables + forShards : forTables + forShards
}

/**
 * The bytes read ahead for `path`, when the path still names that file (called with the lock
 * held: another gendsync may have renamed a new generation over it before); undefined otherwise,
 * and the caller reads it itself.
 */
export function stillCurrent(read: Map<string, { buf: Buffer; stamp: FileStamp }> | undefined, path: string): Buffer | undefined {
  const r = read?.get(path)
  return r && sameFile(path, r.stamp) ? r.buf : undefined
}
