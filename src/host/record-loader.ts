import { readFileSync } from 'node:fs'
import { deltaFile, generationFiles } from '../generation/files.js'
import { parseDelta, sha256Hex } from '../generation/delta.js'
import { deltaFiles, matchTorrentToDelta } from '../generation/delta-torrent.js'
import { parseRecord, type DeltaRef, type GenerationRecord } from '../generation/record.js'
import { readTorrentInfo } from '../torrent/read.js'
import type { Generation } from './generation.js'
import { SegmentTable } from './segment-table.js'

/** One delta a host offers: its bytes, its torrent's, and the torrent ready to seed. */
export interface OfferedDelta {
  ref: DeltaRef
  delta: Buffer
  torrent?: Buffer
  gen?: Generation
}

export interface LoadedRecord {
  record?: GenerationRecord
  /** Why the record on disk is not served (stale, damaged); undefined when all is well or there is none. */
  problem?: string
  deltas: Map<number, OfferedDelta>
}

/**
 * The signed record beside a generation, served only when it describes exactly this
 * generation (data.dsync's SHA-256 and the torrent's infohash): gendsync writes it last, so a
 * run killed half-way leaves a stale record, which is not served. Each delta it lists is
 * offered when its bytes on disk match the record, and its torrent is seeded in place.
 */
export function loadRecord(gen: Generation): LoadedRecord {
  const files = generationFiles(gen.save)
  let bytes: Buffer
  try {
    bytes = readFileSync(files.record)
  } catch {
    return { deltas: new Map() } // not published with a record (older gendsync)
  }
  let record: GenerationRecord
  try {
    record = parseRecord(bytes)
  } catch (err) {
    return { problem: `${files.record}: ${(err as Error).message}`, deltas: new Map() }
  }
  const reason = record.repo !== gen.repo ? `names repository "${record.repo}"`
    : record.manifest.sha256 !== (gen.manifestSha256 ?? sha256Hex(gen.manifest)) ? 'describes another data.dsync'
      : record.torrent !== gen.infoHash ? `names torrent ${record.torrent}, not ${gen.infoHash}` : undefined
  if (reason) return { problem: `${files.record}: stale record (${reason}); run gendsync`, deltas: new Map() }
  const deltas = new Map<number, OfferedDelta>()
  for (const ref of record.deltas) {
    const offered = loadDelta(gen, ref)
    if (offered) deltas.set(ref.seq, offered)
  }
  return { record, deltas }
}

function loadDelta(gen: Generation, ref: DeltaRef): OfferedDelta | undefined {
  try {
    const delta = readFileSync(deltaFile(gen.save, ref.seq, 'delta'))
    if (sha256Hex(delta) !== ref.sha256) return undefined
    if (!ref.infoHash) return { ref, delta }
    const torrent = readFileSync(deltaFile(gen.save, ref.seq, 'torrent'))
    return { ref, delta, torrent, gen: deltaGeneration(gen, ref, delta, torrent) }
  } catch {
    return undefined // pruned or damaged: simply not offered
  }
}

/** A delta torrent as a seedable generation: the changed files, read in place from the tree. */
function deltaGeneration(gen: Generation, ref: DeltaRef, deltaBytes: Buffer, torrent: Buffer): Generation | undefined {
  const info = readTorrentInfo(torrent)
  if (info.infoHash !== ref.infoHash) return undefined
  const delta = parseDelta(deltaBytes)
  const layout = matchTorrentToDelta(info, delta, gen.repo)
  if (typeof layout === 'string') return undefined
  const mtimes = new Map(deltaFiles(delta).map(f => [f.path, f.mtime]))
  const segments = SegmentTable.fromLayout(layout, mtimes)
  const last = layout[layout.length - 1]
  const totalLength = last.offset + last.length
  return {
    repo: gen.repo, save: gen.save, infoHash: info.infoHash, infoBytes: info.infoBytes, torrent,
    magnet: `magnet:?xt=urn:btih:${info.infoHash}&dn=${encodeURIComponent(gen.repo)}`,
    manifest: Buffer.alloc(0), digest: ref.to, pieceLength: info.pieceLength,
    pieceCount: Math.ceil(totalLength / info.pieceLength), totalLength, segments,
    files: mtimes.size, bytes: deltaFiles(delta).reduce((s, f) => s + f.size, 0), trackers: info.trackers,
  }
}
