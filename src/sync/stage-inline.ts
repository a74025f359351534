import { fsError } from '../errors.js'
import { PartWriter } from './part-writer.js'
import { ITEM_AHEAD } from './stage-items.js'
import type { StageWriterEvents } from './stage-writer.js'

/**
 * A pull of at most this many files and bytes is staged on the event loop (InlineStager), with
 * its pieces' SHA-1 checked there too, and no thread starts for it. Each worker thread is an
 * isolate of its own (~9 MiB), and the stage writer keeps up to 32 MiB of batches per lane:
 * the 1M-file update's 503 files / 20 MiB rose the client from 84 to 166 MiB in half a second
 * (two stage workers ~18 MiB, ~20 MiB of batches in flight; docs/SCALE.md, "Update memory").
 * A small pull costs the event loop little this way: creating and writing a file ~0.1 ms,
 * the SHA-256 of one-piece files is done there anyway (wholeFileHash: no verifier thread). Measured: see
 * docs/SCALE.md "Small pulls stage on the event loop" (h11u8).
 */
export const INLINE_MAX_FILES = 4096
export const INLINE_MAX_BYTES = 64 << 20

/**
 * Whether a pull of `files` files / `bytes` bytes still to fetch stages on the event loop.
 * DSYNC_STAGE_THREADS=1 keeps the threads for any pull (tests run the threaded path on small
 * trees with it; also a way to compare the two on a real update).
 */
export function stagesInline(files: number, bytes: number, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.DSYNC_STAGE_THREADS === '1') return false
  return files <= INLINE_MAX_FILES && bytes <= INLINE_MAX_BYTES
}

/** What the transfer hands its verified pieces to: the stage writer (threads) or InlineStager. */
export interface Stager {
  /** `ahead`, with ITEM_AHEAD in `flags`: the path the finished file is placed ahead at (new-folders.ts). */
  write(hex: string, offset: number, data: Uint8Array, size: number, flags: number, mode?: number, mtime?: number, ahead?: string): void
  drain(): Promise<void>
  close(): Promise<void>
}

/**
 * The stage writer's work (PartWriter: write, SHA-256, rename) done on the event loop, piece
 * by piece as the transfer verifies them, for a small pull (stagesInline). Same files, names
 * and checks as the stage workers make, so a killed run leaves what they would; only no
 * batches are copied and no thread starts. The outcomes are reported at the end of the
 * event-loop turn, as the threaded writer's are (never from inside the downloader's call).
 */
export class InlineStager implements Stager {
  private readonly part: PartWriter
  private written = 0
  private readonly verified: string[] = []
  private readonly mismatched: string[] = []
  private reportScheduled = false
  private failed = false

  constructor(dir: string, private readonly events: StageWriterEvents) {
    this.part = new PartWriter(dir)
  }

  write(hex: string, offset: number, data: Uint8Array, size: number, flags: number, mode = -1, mtime = 0, ahead = ''): void {
    if (this.failed) return
    try {
      const outcome = this.part.write(hex, offset, data, size, flags, mode >= 0 ? { mode, mtime } : undefined, flags & ITEM_AHEAD ? ahead : undefined)
      if (outcome === 'verified') this.verified.push(hex)
      else if (outcome === 'mismatch') this.mismatched.push(hex)
    } catch (err) {
      this.failed = true
      const error = fsError(err, this.part.partPath(hex), 'write')
      setImmediate(() => this.events.onError(error))
      return
    }
    this.written += data.length
    if (!this.reportScheduled) {
      this.reportScheduled = true
      setImmediate(() => this.report())
    }
  }

  /**
   * Everything written is reported by then, a failed write too: its report was queued first
   * (setImmediate runs in order). A write that failed in the last piece's turn was otherwise
   * reported after the transfer had returned, and the pull went on to apply a truncated file.
   */
  async drain(): Promise<void> {
    if (this.reportScheduled || this.failed) await new Promise<void>(resolve => setImmediate(resolve))
  }

  /** Closes the open part files (they stay, to be resumed by a later run). */
  async close(): Promise<void> {
    this.part.closeAll()
  }

  private report(): void {
    this.reportScheduled = false
    if (this.failed) return
    const bytes = this.written
    this.written = 0
    if (bytes > 0) this.events.onWritten(bytes)
    for (const hex of this.verified.splice(0)) this.events.onVerified(hex)
    for (const hex of this.mismatched.splice(0)) this.events.onMismatch(hex)
  }
}
