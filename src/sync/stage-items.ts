/**
 * A batch's pieces, packed for postMessage: the files' SHA-256 hex names end to end (64
 * characters each) and, per piece, ITEM_FIELDS numbers: offset in the file, start in the batch
 * buffer, length, the file's size, flags (ITEM_LAST, ITEM_CHECKED, ITEM_AHEAD, ITEM_UNCHECKED), then the mode and mtime the
 * staged file gets (mode -1: leave them to the apply). An array of one object per piece cost
 * its structured clone: postMessage was 3.5% of a 200k-file pull's main thread.
 */
export interface PackedItems {
  hexes: string
  numbers: Float64Array
  /** The paths of the items flagged ITEM_AHEAD, in order, each followed by a NUL (no path holds one). */
  ahead: string
}
export const ITEM_FIELDS = 7
export const HEX_CHARS = 64
/** No other piece of the file is still to come. */
export const ITEM_LAST = 1
/** The piece is the whole file and already matched its SHA-256 (on the event loop). */
export const ITEM_CHECKED = 2
/** The finished file goes to `<staging>/folders/<path>` (new-folders.ts), not under its SHA-256. */
export const ITEM_AHEAD = 4
/**
 * The piece was not checked by its SHA-1 (the downloader's checkedBySink): its file's SHA-256
 * is its check. A file holding such a piece keeps its `.part` when it does not match, so the
 * transfer can read the pieces back, find the bad ones by their SHA-1 and fetch them again.
 */
export const ITEM_UNCHECKED = 8

/** Mode and mtime (seconds) a staged file is given before it is closed. */
export interface StagedMeta {
  mode: number
  mtime: number
}

export interface StageItem {
  hex: string
  offset: number
  start: number
  length: number
  size: number
  flags: number
  meta: StagedMeta | undefined
  /** Where the finished file goes under `<staging>/folders/` (ITEM_AHEAD), if anywhere. */
  ahead: string | undefined
}

/** The pieces of a packed batch, one by one. */
export function* unpackItems(p: PackedItems): Generator<StageItem> {
  const n = p.numbers
  let at = 0
  for (let i = 0, j = 0; j < n.length; i++, j += ITEM_FIELDS) {
    let ahead: string | undefined
    if (n[j + 4] & ITEM_AHEAD) {
      const end = p.ahead.indexOf('\0', at)
      ahead = p.ahead.slice(at, end)
      at = end + 1
    }
    yield {
      hex: p.hexes.slice(i * HEX_CHARS, (i + 1) * HEX_CHARS), offset: n[j], start: n[j + 1], length: n[j + 2], size: n[j + 3], flags: n[j + 4],
      meta: n[j + 5] >= 0 ? { mode: n[j + 5], mtime: n[j + 6] } : undefined, ahead,
    }
  }
}
