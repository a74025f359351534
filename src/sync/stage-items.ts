/**
 * A batch's pieces, packed for postMessage: the files' SHA-256 hex names end to end (64
 * characters each) and, per piece, ITEM_FIELDS numbers: offset in the file, start in the batch
 * buffer, length, the file's size, 1 if it is the file's last piece. An array of one object
 * per piece cost its structured clone: postMessage was 3.5% of a 200k-file pull's main thread.
 */
export interface PackedItems {
  hexes: string
  numbers: Float64Array
}
export const ITEM_FIELDS = 5
export const HEX_CHARS = 64

/** The pieces of a packed batch, one by one. */
export function* unpackItems(p: PackedItems): Generator<{ hex: string; offset: number; start: number; length: number; size: number; last: boolean }> {
  const n = p.numbers
  for (let i = 0, j = 0; j < n.length; i++, j += ITEM_FIELDS) {
    yield { hex: p.hexes.slice(i * HEX_CHARS, (i + 1) * HEX_CHARS), offset: n[j], start: n[j + 1], length: n[j + 2], size: n[j + 3], last: n[j + 4] === 1 }
  }
}
