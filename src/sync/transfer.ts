import { createHash } from 'node:crypto'
import { unlinkSync } from 'node:fs'
import { STALL_MS } from '../config/defaults.js'
import { DsyncError, ExitCode, fsError } from '../errors.js'
import { t } from '../i18n/index.js'
import { Downloader, type DownloaderOptions } from '../swarm/downloader.js'
import { traceMark } from '../swarm/trace.js'
import type { PeerConnection } from '../swarm/peer.js'
import type { Swarm } from '../swarm/swarm.js'
import { fileSpans, type PieceMap, type PieceSpan } from '../torrent/piece-map.js'
import { badPieces } from './part-read-back.js'
import { ITEM_AHEAD, ITEM_CHECKED, ITEM_LAST, ITEM_UNCHECKED } from './stage-items.js'
import { InlineStager, stagesInline, type Stager } from './stage-inline.js'
import { StageWriter, type StageWriterEvents } from './stage-writer.js'
import { SYNCFS_MIN_FILES, type Staging } from './staging.js'
import { backgroundWriteback } from './writeback.js'

/**
 * A transfer of this many bytes has its staged data written out while it runs even in a few
 * files: without it, one 2 GiB file left up to the kernel's dirty threshold (10% of memory,
 * ~1.9 GB here) to its fsync after the last piece, with the network done.
 */
const WRITEBACK_MIN_BYTES = 128 << 20

/**
 * Files of several pieces up to this size are checked by their SHA-256 alone (the downloader's
 * checkedBySink), not also piece by piece by SHA-1: each of their bytes was hashed twice, on the
 * verifier thread and on a stage worker (806 MB of a `mirror` bootstrap's 1 GiB, plus 135 MB of
 * pad zeros). A bad piece is then found only once its file is complete (the file fails, its
 * pieces are read back and checked by SHA-1): the bound keeps what a bad peer can send before it
 * is named, and the read-back on the event loop, to one such file. Bigger files keep the SHA-1.
 */
export const UNCHECKED_MAX_BYTES = 64 << 20

/**
 * Whether files of several pieces come unchecked (UNCHECKED_MAX_BYTES). DSYNC_SHA1_PIECES=1 checks
 * every piece by its SHA-1 as it lands, as before (tests of the piece verifier's verdicts; a way
 * to compare the two on a real pull).
 */
function uncheckedPieces(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.DSYNC_SHA1_PIECES !== '1'
}

/** Progress events at most this often (the CLI prints at most 4 a second). */
const PROGRESS_MS = 50

export interface TransferProgress {
  bytesDone: number
  bytesTotal: number
  filesDone: number
  filesTotal: number
  peers: number
}

export interface TransferOptions {
  swarm: Swarm
  map: PieceMap
  hashes: Buffer
  staging: Staging
  /** Torrent file index -> SHA-256 hex of its content (the staging name). */
  files: Map<number, string>
  /**
   * Torrent file index -> its content's number in the plan's fetch list (Staging.metaIdAt), when
   * the caller knows it: no look-up of the hex name per fetched file (Staging.metaIdFor).
   */
  metaIds?: Int32Array
  onProgress?: (p: TransferProgress) => void
  onWarning?: (message: string) => void
  /** No piece verified for this long while pieces remain: give up. */
  stallMs?: number
  infoHash: string
  /** A downloader started before the plan (early-fetch.ts): adopted with this transfer's pieces instead of a new one. */
  early?: Downloader
}

export interface TransferResult {
  bytesReceived: number
  bytesPerPeer: Record<string, number>
  reusedPieces: number
}

/**
 * Fetches whole files into staging from every peer of the swarm. Pieces of a `.part` left by
 * an earlier run are checked first and kept when they verify. Each finished file is checked
 * against its SHA-256 before it counts as staged.
 */
export async function transferFiles(opts: TransferOptions): Promise<TransferResult> {
  const { staging, map } = opts
  const mismatch = (index: number) =>
    new DsyncError(ExitCode.badData, 'sync.manifestMismatch', { from: 'peers', reason: `${map.files[index].path}: content does not match its SHA-256` })
  const { pieces, remainingPerFile, reusedPieces, bytesTotal, filesStaged } = resumeFromParts(opts, mismatch)
  const bytesPerPeer: Record<string, number> = {}
  const counts: Counts = { bytesDone: 0, filesDone: filesStaged }
  const progress = throttledProgress(opts, counts, bytesTotal)
  // Which file a mismatching content is, looked up only then (a Map of every file per transfer was not).
  const indexOf = (hex: string) => [...opts.files].find(([, h]) => h === hex)![0]
  // A file that fails its SHA-256 or cannot be written ends the transfer, even after the last piece.
  let storeFailure: Error | undefined
  const storeFailed = (err: Error) => {
    storeFailure ??= err
    downloader.abort(err)
  }
  staging.prepare()
  // Files whose pieces came unchecked (checkedBySink), by content, until their SHA-256 settles them.
  const unchecked = new Map<string, number>()
  const events: StageWriterEvents = {
    onWritten: bytes => { counts.bytesDone += bytes; progress() },
    onVerified: hex => {
      counts.filesDone++
      const index = unchecked.get(hex)
      if (index !== undefined) {
        unchecked.delete(hex)
        confirmFile(map, index, downloader)
      }
      progress()
    },
    onMismatch: hex => {
      const index = unchecked.get(hex)
      if (index === undefined) return storeFailed(mismatch(indexOf(hex)))
      unchecked.delete(hex)
      readBack(index, hex)
    },
    onError: storeFailed,
    onBusy: busy => (busy ? downloader.pause() : downloader.resume()),
  }
  // A small pull (an update's few hundred files) starts no thread: stage-inline.ts says why.
  const inline = stagesInline(opts.files.size - filesStaged, bytesTotal)
  const writer: Stager = inline ? new InlineStager(staging.dir, events) : new StageWriter(staging.dir, events)
  /**
   * A file of unchecked pieces failed its SHA-256: its pieces are read back from the `.part` and
   * checked by SHA-1. Bad ones are taken back (their senders dropped) and fetched again into the
   * same `.part`; none bad means data.dsync and the torrent disagree, and the pull fails as before.
   */
  const readBack = (index: number, hex: string) => {
    const path = staging.partPath(hex)
    let bad: PieceSpan[]
    try {
      bad = badPieces(path, map, index, opts.hashes)
    } catch (err) {
      return storeFailed(fsError(err, path, 'read'))
    }
    if (bad.length === 0) {
      try { unlinkSync(path) } catch { /* the pull fails either way */ }
      return storeFailed(mismatch(index))
    }
    traceMark('read-back', { file: index, bad: bad.length })
    // Taken back first: confirming the good ones must not find every piece settled and finish.
    for (const span of bad) {
      remainingPerFile[index]++
      counts.bytesDone -= span.dataLength
      downloader.takeBack(span)
    }
    confirmFile(map, index, downloader)
  }
  const sink = pieceSink(opts, remainingPerFile, writer, bytesPerPeer, unchecked)
  const downloader: Downloader = opts.early ?? new Downloader({ pieces, hashes: opts.hashes, verifyOffThread: !inline, ...sink })
  // The pieces it holds go to the stage writer now (which may pause it: `downloader` is bound first).
  opts.early?.adopt(pieces, sink)
  // An early fetch warns from its start (early-fetch.ts).
  if (!opts.early) warnOnHashFail(downloader, opts.onWarning)
  const detach = attachPeers(opts.swarm, downloader)
  // Staged data leaves for the disk during the transfer, not all in the final sync (writeback.ts).
  const stopWriteback = opts.files.size >= SYNCFS_MIN_FILES || bytesTotal >= WRITEBACK_MIN_BYTES ? backgroundWriteback(staging.dir) : undefined
  progress()
  try {
    await watchDownload(downloader, {
      swarm: opts.swarm, stallMs: opts.stallMs ?? STALL_MS, infoHash: opts.infoHash,
      describe: missing => firstPaths(map, missing),
    })
    // Every piece is verified; the last files may still be being written and checked.
    traceMark('last-piece')
    await writer.drain()
    traceMark('staged')
    if (storeFailure) throw storeFailure
  } finally {
    stopWriteback?.()
    detach()
    await writer.close()
    staging.closeAll()
  }
  return { bytesReceived: counts.bytesDone, bytesPerPeer, reusedPieces }
}

/** A peer dropped for a piece failing its hash check is named in a warning. */
export function warnOnHashFail(downloader: Downloader, onWarning?: (message: string) => void): void {
  downloader.on('hash-fail', (peer: PeerConnection, piece: number) =>
    onWarning?.(t('sync.peerDropped', { peer: peer.label, reason: `piece ${piece} failed its hash check` })))
}

interface Counts {
  bytesDone: number
  filesDone: number
}

/**
 * Progress at most every PROGRESS_MS (and at the end): called per file, the events (two
 * objects each, built before the printer's own throttle) were ~1% of a 20,000-file pull's time.
 */
function throttledProgress(opts: TransferOptions, counts: Counts, bytesTotal: number): () => void {
  let at = 0
  return () => {
    const now = performance.now()
    if (now - at < PROGRESS_MS && counts.bytesDone !== bytesTotal && counts.filesDone !== opts.files.size) return
    at = now
    opts.onProgress?.({ bytesDone: counts.bytesDone, bytesTotal, filesDone: counts.filesDone, filesTotal: opts.files.size, peers: opts.swarm.connected.size })
  }
}

/** Every piece of file `index` still unsettled in the downloader is confirmed (its file matched). */
function confirmFile(map: PieceMap, index: number, downloader: Downloader): void {
  const f = map.files[index]
  for (let p = f.firstPiece; p < f.firstPiece + f.pieceCount; p++) downloader.confirm(p)
}

/**
 * Where the downloader's pieces go: the stage writer, with each file's last-piece, checked and
 * unchecked flags; `unchecked` learns the files whose pieces came without their SHA-1.
 */
function pieceSink(opts: TransferOptions, remainingPerFile: Int32Array, writer: Stager, bytesPerPeer: Record<string, number>, unchecked: Map<string, number>): Pick<DownloaderOptions, 'wholeFileHash' | 'onPiece' | 'checkedBySink'> {
  const { staging, map, metaIds } = opts
  return {
    // A one-piece file (most of a mirror of small files): its SHA-256 checks the piece (on the
    // verifier thread, or here for a small pull), and the stage worker need not hash it again. A
    // mismatch falls back to the piece's SHA-1, so data the torrent vouches for but data.dsync
    // does not still ends as "content does not match its SHA-256", not as a bad peer.
    wholeFileHash: span => (span.dataLength === map.files[span.file].length ? opts.files.get(span.file) : undefined),
    // A piece of a file of several pieces (up to UNCHECKED_MAX_BYTES): the stage worker's SHA-256 of
    // the file checks it; its SHA-1 only if the file fails (readBack).
    checkedBySink: uncheckedPieces() ? span => {
      const length = map.files[span.file].length
      return span.dataLength !== length && length <= UNCHECKED_MAX_BYTES
    } : undefined,
    onPiece: (span, data, from, wholeChecked, isUnchecked) => {
      const left = --remainingPerFile[span.file]
      const hex = opts.files.get(span.file)!
      let flags = (left === 0 ? ITEM_LAST : 0) | (wholeChecked ? ITEM_CHECKED : 0)
      if (isUnchecked) {
        flags |= ITEM_UNCHECKED
        unchecked.set(hex, span.file)
      }
      const id = left !== 0 ? -1 : metaIds ? staging.metaIdAt(metaIds[span.file]) : staging.metaIdFor(hex)
      const size = map.files[span.file].length
      if (id < 0) writer.write(hex, span.fileOffset, data, size, flags)
      else {
        const entry = staging.metaEntry(id)
        const ahead = staging.markMetaSet(id, entry)
        if (ahead === undefined) writer.write(hex, span.fileOffset, data, size, flags, entry.mode & 0o1777, entry.mtime)
        else writer.write(hex, span.fileOffset, data, size, flags | ITEM_AHEAD, entry.mode & 0o1777, entry.mtime, ahead)
      }
      bytesPerPeer[from.label] = (bytesPerPeer[from.label] ?? 0) + span.dataLength
    },
  }
}

interface Resumed {
  /** The pieces still to fetch. */
  pieces: PieceSpan[]
  /** Torrent file index -> pieces of it still to come (an array over the torrent's files: a Map's get and set per piece were not). */
  remainingPerFile: Int32Array
  reusedPieces: number
  bytesTotal: number
  /** Files whose every piece was already verified in their .part (now staged). */
  filesStaged: number
}

/**
 * Pieces of a `.part` left by an earlier (killed) run are kept when they verify; a file whose
 * every piece does is checked against its SHA-256 and staged here.
 */
function resumeFromParts(opts: TransferOptions, mismatch: (index: number) => Error): Resumed {
  const { staging, map } = opts
  const pieces: PieceSpan[] = []
  const remainingPerFile = new Int32Array(map.files.length)
  let reusedPieces = 0
  let bytesTotal = 0
  for (const [index, hex] of opts.files) {
    let left = 0
    for (const span of fileSpans(map, index)) {
      if (staging.hasPart(hex) && pieceVerifies(staging.readPart(hex, span.fileOffset, span.dataLength), span, opts.hashes)) {
        reusedPieces++
        continue
      }
      pieces.push(span)
      left++
      bytesTotal += span.dataLength
    }
    remainingPerFile[index] = left
  }
  let filesStaged = 0
  for (const [index, hex] of opts.files) {
    if (remainingPerFile[index] > 0) continue
    if (!staging.finalize(hex)) throw mismatch(index)
    filesStaged++
  }
  return { pieces, remainingPerFile, reusedPieces, bytesTotal, filesStaged }
}

/** The first few paths of the files still missing, for an error message. */
function firstPaths(map: PieceMap, missing: PieceSpan[]): string {
  const files = [...new Set(missing.map(p => map.files[p.file].path))]
  return `${files.slice(0, 3).join(', ')}${files.length > 3 ? ', ...' : ''}`
}

/** Every peer of the swarm, now and later, feeds the downloader once its handshake is done. */
function attachPeers(swarm: Swarm, downloader: Downloader): () => void {
  const onPeer = (peer: PeerConnection) => {
    peer.ready().then(() => downloader.addPeer(peer), (err: Error) => peer.close(err.message))
  }
  swarm.on('peer', onPeer)
  for (const peer of swarm.connected) onPeer(peer)
  return () => swarm.off('peer', onPeer)
}

export interface WatchOptions {
  swarm: Swarm
  stallMs: number
  infoHash: string
  /** Names what is still missing, for the error message. */
  describe: (missing: PieceSpan[]) => string
}

/**
 * Resolves when the downloader finishes; rejects when it fails (a piece that cannot be
 * stored), starves (no peer left and none to come) or stalls (no piece for `stallMs`:
 * peers that never answer, or that refuse every piece).
 */
export function watchDownload(d: Downloader, opts: WatchOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    let lastProgress = Date.now()
    d.on('piece', () => (lastProgress = Date.now()))
    const timer = setInterval(() => {
      const starved = d.peerCount === 0 && opts.swarm.connected.size === 0 && !opts.swarm.hasProspects()
      if (d.remaining > 0 && (starved || Date.now() - lastProgress > opts.stallMs)) {
        clearInterval(timer)
        const tried = [...opts.swarm.failures].map(([peer, why]) => `${peer} (${why})`).join(', ') || opts.swarm.tried().join(', ') || 'none'
        reject(new DsyncError(ExitCode.network, starved && opts.swarm.tried().length === 0 ? 'sync.noPeers' : 'sync.stalled', {
          remaining: `${d.remaining} (${opts.describe(d.missing())})`, tried, infohash: opts.infoHash,
        }))
      }
    }, 250)
    d.whenDone().then(() => {
      clearInterval(timer)
      resolve()
    }, err => {
      clearInterval(timer)
      reject(err)
    })
  })
}

export function pieceVerifies(data: Buffer, span: PieceSpan, hashes: Buffer): boolean {
  const h = createHash('sha1').update(data)
  if (span.pieceLength > span.dataLength) h.update(Buffer.alloc(span.pieceLength - span.dataLength))
  return h.digest().equals(hashes.subarray(span.piece * 20, span.piece * 20 + 20))
}
