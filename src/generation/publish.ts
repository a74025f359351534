import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fsError } from '../errors.js'
import type { LineTable } from '../manifest/manifest-lines.js'
import type { DurableBatch } from '../util/durable-batch.js'
import { deltaReproduces, makeDelta, parseDelta, sha256Hex } from './delta.js'
import { buildDeltaTorrent } from './delta-torrent.js'
import type { PublisherKey } from './keys.js'
import { parseRecord, signBep44, signRecord, type DeltaRef, type GenerationRecord, type RecordBody } from './record.js'
import { generationFiles } from './files.js'

/** Deltas a host keeps unless `keep-deltas=` says otherwise: eight days at four updates a day. */
export const DEFAULT_KEEP_DELTAS = 32

export interface PublishOptions {
  repo: string
  save: string
  trackers: string[]
  key: PublisherKey
  keepDeltas: number
  /** data.dsync as it was before this gendsync run (undefined on the first run). */
  previous?: Buffer
  manifest: Buffer
  /** The repository (or index) torrent, and the shard torrents in index order. */
  infoHash: string
  shards: string[]
  /** A content file's zero-padded piece hashes (gendsync's digests). */
  piecesOf: (path: string) => Buffer
  /** SHA-256s of `manifest` and `previous` when the caller has them already (gendsync --changed). */
  known?: { manifest: string; previous?: string }
  /** Line offsets of `previous` and `manifest` when the caller has them (gendsync --changed). */
  lines?: { old: LineTable; new: LineTable }
  now?: number
  /** Where the delta and the record are written (after the outputs: the record is renamed last). */
  batch: DurableBatch
}

export interface PublishResult {
  record: GenerationRecord
  /** False when the existing record already described this tree and was kept as it is. */
  signed: boolean
  delta?: DeltaRef
}

/**
 * The last step of gendsync: the delta from the previous data.dsync (and its torrent), the
 * K newest deltas kept, and the signed record, added last to the batch that holds the
 * outputs, so that a record on disk always describes files that are already there. A tree the existing record describes keeps that
 * record byte for byte, whoever signed it: a host re-serving a pulled tree re-serves its
 * upstream's record.
 */
export function publishGeneration(opts: PublishOptions): PublishResult {
  const files = generationFiles(opts.save)
  const manifestSha = opts.known?.manifest ?? sha256Hex(opts.manifest)
  const old = readRecord(files.record)
  if (old && old.repo === opts.repo && old.manifest.sha256 === manifestSha && old.torrent === opts.infoHash && sameList(old.shards, opts.shards)) {
    return { record: old, signed: false }
  }
  const seq = Math.max((old?.seq ?? 0) + 1, Math.floor((opts.now ?? Date.now()) / 1000))
  try {
    mkdirSync(files.deltas, { recursive: true })
  } catch (err) {
    throw fsError(err, files.deltas, 'write')
  }
  const kept = (old?.deltas ?? []).filter(d => deltaOnDisk(files.deltas, d))
  let delta: DeltaRef | undefined
  const previousSha = opts.previous && (opts.known?.previous ?? sha256Hex(opts.previous))
  if (opts.previous && previousSha !== manifestSha) {
    delta = writeDelta(opts, files.deltas, seq, { from: previousSha!, to: manifestSha })
    kept.push(delta)
  }
  const deltas = kept.slice(Math.max(0, kept.length - opts.keepDeltas))
  // After the renames: the record that no longer lists them is on disk first.
  opts.batch.then(() => pruneDeltas(files.deltas, new Set(deltas.map(d => d.seq))))
  const body: RecordBody = {
    repo: opts.repo, seq, time: Math.floor((opts.now ?? Date.now()) / 1000), key: opts.key.publicHex,
    manifest: { sha256: manifestSha, size: opts.manifest.length }, torrent: opts.infoHash, shards: opts.shards, deltas,
    dht: signBep44(opts.repo, seq, opts.infoHash, opts.key.privateKey),
  }
  const bytes = signRecord(body, opts.key.privateKey)
  opts.batch.add(files.record, bytes)
  return { record: { ...body, bytes }, signed: true, delta }
}

function writeDelta(opts: PublishOptions, dir: string, seq: number, known: { from: string; to: string }): DeltaRef {
  const bytes = makeDelta(seq, opts.previous!, opts.manifest, known, opts.lines)
  const delta = parseDelta(bytes)
  // The delta must reproduce this data.dsync exactly; anything else is a bug, not a tree change.
  if (!deltaReproduces(opts.previous!, delta, opts.manifest, opts.lines?.old)) {
    throw new Error('delta does not reproduce data.dsync')
  }
  const torrent = buildDeltaTorrent(opts.repo, delta, opts.save, opts.trackers, opts.piecesOf)
  opts.batch.add(join(dir, `${seq}.delta`), bytes)
  if (torrent) opts.batch.add(join(dir, `${seq}.torrent`), torrent.torrent)
  return { seq, from: delta.from, to: delta.to, sha256: sha256Hex(bytes), size: bytes.length, infoHash: torrent?.infoHash }
}

function deltaOnDisk(dir: string, d: DeltaRef): boolean {
  try {
    const bytes = readFileSync(join(dir, `${d.seq}.delta`))
    return bytes.length === d.size && sha256Hex(bytes) === d.sha256
  } catch {
    return false
  }
}

/** Removes delta files the new record does not list (older than the K newest, or strays). */
function pruneDeltas(dir: string, keep: Set<number>): void {
  for (const name of readdirSync(dir)) {
    const m = /^(\d+)\.(delta|torrent)$/.exec(name)
    if (m && keep.has(Number(m[1]))) continue
    rmSync(join(dir, name), { force: true, recursive: true })
  }
}

export function readRecord(file: string): GenerationRecord | undefined {
  try {
    return parseRecord(readFileSync(file))
  } catch {
    return undefined
  }
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}
